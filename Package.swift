// swift-tools-version:6.0
// erudiff: a daemon that keeps text-to-image flow models warm and refactors their knowledge (EruDiff).
// Layers (DESIGN.md §2), each only using the ones before it:
//   (CBLAS, CKernels) <- Tensors <- Models <- Diffusion <- EruDiff <- Daemon <- erudiffd
//   Tensors <- World <- EruDiff
//   (CUV, CJansson) <- RPCServer <- Daemon   (RPCServer: generic JSON-RPC over libuv, knows no model)
import PackageDescription

// Swift 5 language mode: the numeric core passes raw buffers between threads on purpose, and the
// daemon hands C callbacks to libuv; both are documented in the README.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v5),
    .unsafeFlags(["-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "erudiff",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "erudiffd", targets: ["erudiffd"]),
        .executable(name: "erudiff-train", targets: ["erudiff-train"]),
        .executable(name: "erudiff-bench", targets: ["erudiff-bench"]),
        .library(name: "EruDiff", targets: ["EruDiff"]),
    ],
    targets: [
        // C libraries, one thin module map each.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson", providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Libraries, bottom to top.
        // Hand-written vector kernels where BLAS is a poor fit (few-row GEMM), chosen at run time by CPU.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Tensors", dependencies: ["CBLAS", "CJansson", "CKernels"], swiftSettings: settings),
        .target(name: "Models", dependencies: ["Tensors"], swiftSettings: settings),
        .target(name: "Diffusion", dependencies: ["Models", "Tensors"], swiftSettings: settings),
        .target(name: "World", dependencies: ["Tensors", "CPNG"],
                resources: [.copy("Resources")], swiftSettings: settings),
        .target(name: "EruDiff", dependencies: ["Diffusion", "Models", "World", "Tensors"],
                swiftSettings: settings),
        .target(name: "RPCServer", dependencies: ["CUV", "CJansson"], swiftSettings: settings),
        .target(name: "Daemon", dependencies: ["RPCServer", "EruDiff", "Models", "World", "Tensors"], swiftSettings: settings),

        // Executables: thin mains over the libraries.
        .executableTarget(name: "erudiffd", dependencies: ["Daemon"], swiftSettings: settings),
        .executableTarget(name: "erudiff-train", dependencies: ["EruDiff"], swiftSettings: settings),
        .executableTarget(name: "erudiff-bench", dependencies: ["EruDiff"], swiftSettings: settings),

        // Tests: one target per module, plus black-box daemon tests.
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"], exclude: ["Fixtures"],
                    swiftSettings: settings),
        .testTarget(name: "ModelsTests", dependencies: ["Models"], exclude: ["Fixtures"],
                    swiftSettings: settings),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion"], exclude: ["Fixtures"], swiftSettings: settings),
        .testTarget(name: "WorldTests", dependencies: ["World"], swiftSettings: settings),
        .testTarget(name: "EruDiffTests", dependencies: ["EruDiff"], swiftSettings: settings),
        .testTarget(name: "RPCServerTests", dependencies: ["RPCServer"], swiftSettings: settings),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "RPCServer"], swiftSettings: settings),
    ]
)
