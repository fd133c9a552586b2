import CUV

// The C callbacks handed to libuv. They are top-level functions in a file of their own (not closures in
// main.swift, which Swift 6 would isolate to the main actor), and each only finds its Swift object
// through the handle's `data` pointer and forwards the call. All of them run on the loop thread.

func serverOf(_ handle: UnsafeMutableRawPointer?) -> Server? {
    guard let handle, let data = handle.assumingMemoryBound(to: uv_handle_t.self).pointee.data else { return nil }
    return Unmanaged<Server>.fromOpaque(data).takeUnretainedValue()
}

func connectionOf(_ handle: UnsafeMutableRawPointer?) -> Connection? {
    guard let handle, let data = handle.assumingMemoryBound(to: uv_handle_t.self).pointee.data else { return nil }
    return Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
}

func uvOnConnection(_ listener: UnsafeMutablePointer<uv_stream_t>?, _ status: Int32) {
    serverOf(UnsafeMutableRawPointer(listener))?.accept(status: status)
}

func uvOnAlloc(_ handle: UnsafeMutablePointer<uv_handle_t>?, _ suggested: Int, _ buf: UnsafeMutablePointer<uv_buf_t>?) {
    guard let buf else { return }
    if let c = connectionOf(UnsafeMutableRawPointer(handle)) {
        buf.pointee = uv_buf_init(c.readBuffer.assumingMemoryBound(to: CChar.self), UInt32(Connection.readBufferSize))
    } else {
        buf.pointee = uv_buf_init(nil, 0)
    }
}

func uvOnRead(_ stream: UnsafeMutablePointer<uv_stream_t>?, _ nread: Int, _ buf: UnsafePointer<uv_buf_t>?) {
    connectionOf(UnsafeMutableRawPointer(stream))?.didRead(nread)
}

func uvOnWrite(_ req: UnsafeMutablePointer<uv_write_t>?, _ status: Int32) {
    // The request and its bytes were allocated as one block (see Connection.write).
    UnsafeMutableRawPointer(req)?.deallocate()
}

func uvOnShutdown(_ req: UnsafeMutablePointer<uv_shutdown_t>?, _ status: Int32) {
    guard let req else { return }
    let stream = req.pointee.handle
    UnsafeMutableRawPointer(req).deallocate()
    connectionOf(UnsafeMutableRawPointer(stream))?.closeNow()
}

func uvOnConnectionClosed(_ handle: UnsafeMutablePointer<uv_handle_t>?) {
    connectionOf(UnsafeMutableRawPointer(handle))?.didClose()
}

/// For handles whose owner needs no notice: frees the handle's memory.
func uvFreeOnClose(_ handle: UnsafeMutablePointer<uv_handle_t>?) {
    UnsafeMutableRawPointer(handle)?.deallocate()
}

func uvOnAsync(_ handle: UnsafeMutablePointer<uv_async_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.workerWoke()
}

func uvOnSignal(_ handle: UnsafeMutablePointer<uv_signal_t>?, _ signum: Int32) {
    serverOf(UnsafeMutableRawPointer(handle))?.signalled(signum)
}

func uvOnIdle(_ handle: UnsafeMutablePointer<uv_idle_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.runSlices()
}

func uvOnHelper(_ handle: UnsafeMutablePointer<uv_async_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.helperWoke()
}

func uvOnTurnEnd(_ handle: UnsafeMutablePointer<uv_prepare_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.turnEnded()
}

func uvOnTick(_ handle: UnsafeMutablePointer<uv_timer_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.tick()
}

func uvOnExitDeadline(_ handle: UnsafeMutablePointer<uv_timer_t>?) {
    serverOf(UnsafeMutableRawPointer(handle))?.closeEverything()
}
