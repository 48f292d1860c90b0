/// The names and attributes that mark deleted and opaque paths, in both formats.
enum Whiteout {
    /// OCI/AUFS: `.wh.NAME` says NAME was deleted.
    static let prefix: [UInt8] = Array(".wh.".utf8)
    /// OCI/AUFS: names starting with this are the format's own bookkeeping.
    static let metaPrefix: [UInt8] = Array(".wh..wh.".utf8)
    /// OCI/AUFS: this name in a directory says the directory hides everything below it.
    static let opaqueMarker: [UInt8] = Array(".wh..wh..opq".utf8)
    /// Overlayfs: the xattr (value `y`) that makes a directory opaque.
    static let opaqueXattr = "trusted.overlay.opaque"
}

/// The `user.containers.override_stat` value containers/storage writes when `force_mask` hides a
/// file's real owner and mode: `uid:gid:0mode[:type]`.
struct OverrideStat: CustomStringConvertible {
    static let xattrName = "user.containers.override_stat"

    var uid: UInt32
    var gid: UInt32
    var permissions: UInt32
    var kind: StrataSystem.FileKind
    var deviceMajor: UInt32
    var deviceMinor: UInt32

    var description: String {
        let mode = "0" + String(permissions & 0o7777, radix: 8)
        let type: String
        switch kind {
        case .regular: type = "file"
        case .directory: type = "dir"
        case .symlink: type = "symlink"
        case .fifo: type = "pipe"
        case .socket: type = "socket"
        case .blockDevice: type = "block-\(deviceMajor)-\(deviceMinor)"
        case .characterDevice: type = "char-\(deviceMajor)-\(deviceMinor)"
        case .unknown: type = "file"
        }
        return "\(uid):\(gid):\(mode):\(type)"
    }
}

import StrataSystem
