// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StrataSystem", targets: ["StrataSystem"]),
        .library(name: "GraphDriver", targets: ["GraphDriver"]),
        .library(name: "StreamCodecs", targets: ["StreamCodecs"]),
        .library(name: "LayerArchive", targets: ["LayerArchive"]),
        .library(name: "ProjectQuota", targets: ["ProjectQuota"]),
        .library(name: "MountLabel", targets: ["MountLabel"]),
        .library(name: "IDShift", targets: ["IDShift"]),
        .library(name: "OCIImage", targets: ["OCIImage"]),
        .library(name: "Overlay", targets: ["Overlay"]),
        .library(name: "StrataCLI", targets: ["StrataCLI"]),
        .executable(name: "strata", targets: ["strata"]),
        .library(name: "ContainerdSnapshotter", targets: ["ContainerdSnapshotter"]),
        .executable(name: "strata-snapshotter", targets: ["strata-snapshotter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // The containerd snapshotter's gRPC (ContainerdSnapshotter only).
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        // strata-snapshotter runs Swift concurrency on NIO's event loops (NIOPosix; grpc's own).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        // C shims and system libraries
        .target(name: "CLinux"),
        .systemLibrary(
            name: "CAttr",
            providers: [.apt(["libattr1-dev"])]),
        // libselinux's headers (libselinux1-dev), with forwarders that load libselinux.so.1 on
        // first use.
        .target(name: "CSELinux", dependencies: ["CLinux"]),
        // libarchive's headers (libarchive-dev), with forwarders that load libarchive.so.13 on
        // first use instead of at every start of the process.
        .target(name: "CArchive", dependencies: ["CLinux"]),

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
        // Decompression and image-tarball members with libarchive, below LayerArchive and OCIImage.
        .target(
            name: "StreamCodecs",
            dependencies: [
                "GraphDriver", "StrataSystem", "CArchive",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "LayerArchive",
            dependencies: [
                "GraphDriver", "StreamCodecs", "StrataSystem", "CArchive",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "ProjectQuota",
            dependencies: [
                "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "IDShift",
            dependencies: [
                "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "MountLabel",
            dependencies: [
                "GraphDriver", "StrataSystem", "CSELinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "Overlay",
            dependencies: [
                "GraphDriver", "LayerArchive", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "OCIImage",
            dependencies: [
                "GraphDriver", "StreamCodecs", "StrataSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .target(
            name: "StrataCLI",
            dependencies: [
                "Overlay", "GraphDriver", "ProjectQuota", "MountLabel", "IDShift", "OCIImage", "StrataSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]),
        .executableTarget(name: "strata", dependencies: ["StrataCLI"]),

        // containerd's Snapshots service over the driver (a proxy snapshotter); nothing else
        // imports it. Generated/ is protoc's output (scripts/snapshotter/generate-protos).
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "ContainerdSnapshotter",
            dependencies: [
                "Overlay", "GraphDriver", "ProjectQuota", "MountLabel", "IDShift", "StrataSystem", "CSQLite",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .executableTarget(
            name: "strata-snapshotter",
            dependencies: [
                "ContainerdSnapshotter", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),

        // The driver conformance suite: written against the GraphDriver protocols, so that any
        // driver can run it.
        .target(
            name: "DriverConformance",
            dependencies: [
                "GraphDriver", "StrataSystem", "TestSupport",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/DriverConformance"),

        // Examples: one small program per module.
        .executableTarget(
            name: "OverlayExample",
            dependencies: ["Overlay", "GraphDriver", "LayerArchive", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/OverlayExample"),
        .executableTarget(
            name: "ProjectQuotaExample",
            dependencies: ["ProjectQuota", "GraphDriver", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/ProjectQuotaExample"),
        .executableTarget(
            name: "MountLabelExample",
            dependencies: ["MountLabel", "GraphDriver", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/MountLabelExample"),

        // Benchmarks (release builds; not part of the test suite)
        .executableTarget(
            name: "strata-bench",
            dependencies: [
                "LayerArchive", "Overlay", "GraphDriver", "StrataSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/strata-bench"),
        .executableTarget(
            name: "IDShiftExample",
            dependencies: [
                "IDShift", "GraphDriver", "StrataSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/IDShiftExample"),

        // Fuzz targets: reproducers in the normal build; libFuzzer binaries when built by
        // scripts/fuzz/build.sh (-DFUZZING -sanitize=fuzzer,address).
        .executableTarget(
            name: "ApplyFuzz",
            dependencies: ["FuzzSupport", "LayerArchive", "GraphDriver", "StrataSystem",
                           .product(name: "SystemPackage", package: "swift-system")],
            path: "Fuzz/ApplyFuzz"),
        .executableTarget(
            name: "ParseFuzz",
            dependencies: ["FuzzSupport", "GraphDriver"],
            path: "Fuzz/ParseFuzz"),
        .target(
            name: "FuzzSupport",
            dependencies: ["StrataSystem", .product(name: "SystemPackage", package: "swift-system")],
            path: "Fuzz/Support"),

        // Tests: one target per module
        .testTarget(
            name: "StrataSystemTests",
            dependencies: ["StrataSystem", "TestSupport", .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "GraphDriverTests",
            dependencies: ["GraphDriver"]),
        .testTarget(
            name: "OverlayTests",
            dependencies: ["Overlay", "DriverConformance", "GraphDriver", "LayerArchive", "StrataSystem", "MountLabel", "IDShift", "TestTiers", "TestSupport",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "ProjectQuotaTests",
            dependencies: ["ProjectQuota", "Overlay", "GraphDriver", "StrataSystem", "TestTiers",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "MountLabelTests",
            dependencies: ["MountLabel", "GraphDriver", "StrataSystem", "TestTiers",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "OCIImageTests",
            dependencies: ["OCIImage", "Overlay", "GraphDriver", "StrataSystem",
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "StrataCLITests",
            dependencies: ["StrataCLI", "StrataSystem", "TestSupport",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(
            name: "LayerArchiveTests",
            dependencies: ["LayerArchive", "GraphDriver", "StrataSystem", "TestSupport",
                           .product(name: "SystemPackage", package: "swift-system")]),

        .testTarget(
            name: "InteropTests",
            dependencies: ["LayerArchive", "Overlay", "GraphDriver", "StrataSystem", "TestSupport",
                           .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(name: "RuntimeTests", dependencies: ["TestSupport"]),

        // Kernel tier: tests that need XFS project quotas or SELinux carry `.kernelTier(…)` (from
        // TestTiers) and run in a user-mode-linux guest: `swift package kernel-test`.
        .target(
            name: "TestTiers",
            dependencies: ["CAttr", "TestSupport"],
            path: "Tests/TestTiers"),
        // What the test targets share: the root trait, scratch directories, running programs.
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport"),
        .testTarget(
            name: "KernelTierTests",
            dependencies: ["TestTiers", "TestSupport"]),
        .plugin(
            name: "KernelTest",
            capability: .command(
                intent: .custom(
                    verb: "kernel-test",
                    description: "Build the tests and run the kernel tier (XFS quota, SELinux) in a user-mode-linux guest"),
                // None: SwiftPM builds the tests; the runner works under /var/tmp, not in the package.
                // (.writeToPackageDirectory would make every run ask or need a flag.)
                permissions: [])),
        .plugin(
            name: "HostCheck",
            capability: .command(
                intent: .custom(
                    verb: "check-host",
                    description: "Check this host for what Strata needs: overlay, d_type, the new mount API, idmapped mounts, project quotas, SELinux"),
                permissions: [])),
        .testTarget(
            name: "ContainerdSnapshotterTests",
            dependencies: [
                "ContainerdSnapshotter", "Overlay", "GraphDriver", "StrataSystem", "TestTiers",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(
            name: "IDShiftTests",
            dependencies: ["IDShift", "GraphDriver", "StrataSystem", "TestSupport",
                           .product(name: "SystemPackage", package: "swift-system")]),
    ],
    swiftLanguageModes: [.v6]
)
