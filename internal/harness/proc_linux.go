package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so the whole group
// can be signalled, and has the kernel SIGKILL it if the process that
// started it dies.
//
// Pdeathsig fires when the OS thread that started the child exits. The Go
// runtime only ends threads whose goroutine exits while locked to it with
// runtime.LockOSThread, which neither tests nor the bench do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
