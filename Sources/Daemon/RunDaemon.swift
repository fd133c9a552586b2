import Foundation

/// The whole daemon: parses the command line, loads the models asked for, serves until `exit` or a
/// signal. Returns the process exit code (0 after a clean shutdown, 1 after `exit` without `shutdown`,
/// 2 for a bad command line or a socket that cannot be taken).
public func runDaemon(arguments: [String]) -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    let options: DaemonOptions
    do {
        options = try DaemonOptions.parse(arguments)
    } catch let f as DaemonOptions.Failure {
        if f.isHelp {
            print(f.description)
            return 0
        }
        FileHandle.standardError.write(Data("erudiffd: \(f.description)\n".utf8))
        return 2
    } catch {
        return 2
    }
    Log.level = options.logLevel
    if let n = options.threads { EngineSetup.setThreads(n) }
    let models = ModelRegistry()
    let methods = MethodTable.standard(options: options, models: models)
    let state = StateDirectory(path: options.stateDir)
    for (name, path) in options.models {
        do {
            try models.load(name: name, path: path, state: state)
            Log.info("loaded model \(name) from \(path)")
        } catch {
            Log.error("cannot load model \(name) from \(path): \(error)")
            return 2
        }
    }
    let server = Server(options: options, models: models, methods: methods)
    do {
        return try server.run()
    } catch {
        Log.error("\(error)")
        return 2
    }
}
