// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StrataSystem", targets: ["StrataSystem"]),
        .library(name: "GraphDriver", targets: ["GraphDriver"]),
        .library(name: "LayerArchive", targets: ["LayerArchive"]),
        .library(name: "IDShift", targets: ["IDShift"]),
        .library(name: "Overlay", targets: ["Overlay"]),
        .library(name: "StrataCLI", targets: ["StrataCLI"]),
        .executable(name: "strata", targets: ["strata"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shims and system libraries
        .target(name: "CLinux"),
        .systemLibrary(
            name: "CAttr",
            providers: [.apt(["libattr1-dev"])]),
        .systemLibrary(
            name: "CSELinux", pkgConfig: "libselinux",
            providers: [.apt(["libselinux1-dev"])]),
        .systemLibrary(
            name: "CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),

        // Swift modules, bottom-up
        .target(
            name: "StrataSystem",
            dependencies: [
                "CLinux", "CAttr",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "GraphDriver",
            dependencies: [
                "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "LayerArchive",
            dependencies: [
                "GraphDriver", "StrataSystem", "CArchive",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "IDShift",
            dependencies: [
                "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "Overlay",
            dependencies: [
                "GraphDriver", "LayerArchive", "StrataSystem", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "StrataCLI",
            dependencies: [
                "Overlay", "GraphDriver", "LayerArchive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .executableTarget(name: "strata", dependencies: ["StrataCLI"]),

        // The driver conformance suite: written against the GraphDriver protocols, so that any
        // driver can run it.
        .target(
            name: "DriverConformance",
            dependencies: [
                "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/DriverConformance"),

        // Benchmarks (release builds; not part of the test suite)
        .executableTarget(
            name: "strata-bench",
            dependencies: [
                "LayerArchive", "Overlay", "GraphDriver", "StrataSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/strata-bench"),

        // Examples: one small program per module
        .executableTarget(
            name: "IDShiftExample",
            dependencies: [
                "IDShift", "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/IDShiftExample"),

        // Tests: one target per module
        .testTarget(
            name: "StrataSystemTests",
            dependencies: ["StrataSystem", .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "GraphDriverTests",
            dependencies: ["GraphDriver"]),
        .testTarget(
            name: "OverlayTests",
            dependencies: ["Overlay", "DriverConformance", "GraphDriver", "LayerArchive", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "StrataCLITests",
            dependencies: ["StrataCLI", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "LayerArchiveTests",
            dependencies: ["LayerArchive", "GraphDriver", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "IDShiftTests",
            dependencies: ["IDShift", "GraphDriver", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")]),
    ],
    swiftLanguageModes: [.v6]
)
