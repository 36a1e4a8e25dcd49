//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so the whole group
// can be signalled. Outside Linux there is no Pdeathsig, so a child of a
// process that is killed outright can outlive it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
