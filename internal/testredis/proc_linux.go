package testredis

import "syscall"

// sysProcAttr puts the child in its own process group, so the whole group
// can be signalled, and has the kernel SIGKILL it if the test binary dies.
//
// Pdeathsig fires when the OS thread that started the child exits. The Go
// runtime only ends threads whose goroutine exits while locked to it with
// runtime.LockOSThread, which tests do not normally do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
