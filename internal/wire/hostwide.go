package wire

// SocketDirsOf returns the socket directories that the agents of user uid
// use when started with XDG_RUNTIME_DIR set to xdg (or empty), in the
// order SocketDirs gives them: for discovery across users and mount
// namespaces, where the caller resolves the paths in another root.
func SocketDirsOf(xdg string, uid int) []string { return socketDirs(xdg, uid) }

// ProcessEnv returns one variable of the initial environment of process
// pid, or "" if it is unset or unreadable.
func ProcessEnv(pid int, key string) string { return processEnv(pid, key) }
