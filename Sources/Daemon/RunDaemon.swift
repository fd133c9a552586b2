import Foundation
import RPCServer
import Tensors

/// The whole daemon: parses the command line, loads the models asked for, serves until `exit` or a
/// signal. Returns the process exit code (0 after a clean shutdown, 1 after `exit` without `shutdown`,
/// 2 for a bad command line or a socket that cannot be taken).
public func runDaemon(arguments: [String]) -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    var options: DaemonOptions
    do {
        options = try DaemonOptions.parse(arguments)
    } catch let f as UsageError {
        if f.isHelp {
            print(f.description)
            return 0
        }
        FileHandle.standardError.write(Data("erudiffd: \(f.description)\n".utf8))
        return 2
    } catch {
        return 2
    }
    Log.program = Engine.info.name
    Log.level = options.server.logLevel
    if let n = options.threads {
        Parallel.threads = n
        BLAS.setThreads(n)
    }
    do {
        // A socket handed over by a service manager is served instead of --socket (systemd's socket
        // activation); otherwise a daemon already listening on --socket is refused before models load.
        options.server.inheritedListener = try SocketActivation.take()
        if options.server.inheritedListener == nil {
            try SocketPath.refuseIfLive(options.server.socketPath, server: Engine.info.name)
        }
    } catch {
        Log.error("\(error)")
        return 2
    }
    let engine = Engine(options: options)
    let methods = MethodTable.erudiff(engine)
    let models = engine.models, state = engine.state
    for (name, path) in options.models {
        do {
            try models.load(name: name, path: path, state: state)
            Log.info("loaded model \(name) from \(path)")
        } catch {
            Log.error("cannot load model \(name) from \(path): \(error)")
            return 2
        }
    }
    if !options.noDefaultModel, !options.models.contains(where: { $0.name == DefaultModel.name }) {
        let (found, searched) = DefaultModel.locate()
        if let path = found {
            do {
                try models.load(name: DefaultModel.name, path: path, state: state)
                Log.info("loaded model \(DefaultModel.name) from \(path) (the default model)")
            } catch {
                Log.error("cannot load the default model \(DefaultModel.name) from \(path): \(error); serving without it "
                          + "(load one with models/load or start with --model \(DefaultModel.name)=PATH)")
            }
        } else {
            Log.warn("no model \(DefaultModel.name) found (looked in \(searched.joined(separator: ", "))); serving without a model: "
                     + "methods that need one answer -32002 until models/load loads one (or start erudiffd with --model "
                     + "\(DefaultModel.name)=PATH, or set ERUDIFF_MODELS)")
        }
    }
    let server = Server(options: options.server, info: Engine.info, methods: methods, hooks: engine.hooks)
    do {
        return try server.run()
    } catch {
        Log.error("\(error)")
        return 2
    }
}
