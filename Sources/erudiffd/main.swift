// erudiffd: the daemon (DESIGN §7). All of it lives in the Daemon module; this is the thin main.
import Daemon

#if canImport(Glibc)
import Glibc
#endif

exit(runDaemon(arguments: Array(CommandLine.arguments.dropFirst())))
