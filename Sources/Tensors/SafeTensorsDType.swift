/// The element types the safetensors format defines, spelled as in the file header.
///
/// All of them are recognised so that a file holding, say, an `I64` position table opens and its
/// layout is validated; only `F32`, `F16` and `BF16` convert to float32 tensors here (the others are a
/// `SafeTensorsError` of kind `unsupportedDType` when read).
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, C64
    case F4, F6_E2M3, F6_E3M2
    case F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ

    /// Bits per element (sub-byte types exist: F4 and the F6 types).
    public var bitSize: Int {
        switch self {
        case .F4: return 4
        case .F6_E2M3, .F6_E3M2: return 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: return 8
        case .I16, .U16, .F16, .BF16: return 16
        case .I32, .U32, .F32: return 32
        case .F64, .I64, .U64, .C64: return 64
        }
    }

    /// Whether `SafeTensors.tensor(named:)` can return this type as float32.
    public var convertsToFloat32: Bool { self == .F32 || self == .F16 || self == .BF16 }
}
