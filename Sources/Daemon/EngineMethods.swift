extension MethodTable {
    /// The engine's methods of DESIGN §7 (`sample`, `matchDistributions`, `rlStep`, `evaluate`,
    /// `encode`, `models/list|load|unload`, `adapters/save|load|reset`). Each lives in a file of its own
    /// in this folder and is registered here with one line, e.g. `registerSample()`; a method that needs
    /// models sets `ModelRegistry.loader` from its registration. None is served until the engine lands.
    func registerEngineMethods(models: ModelRegistry) {
    }
}
