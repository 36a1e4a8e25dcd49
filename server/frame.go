package server

import "encoding/binary"

// appendTextFrame appends payload to dst as one unfragmented WebSocket
// text frame as a server sends it (RFC 6455 §5.2: FIN set, opcode 1, no
// mask, the shortest length encoding). Data frames are framed here rather
// than by the library so that a broadcast can leave in one system call
// without a goroutine of its own (leanConn.tryWrite); the library still
// writes the control frames (ping, pong, close), each in one Write.
func appendTextFrame(dst, payload []byte) []byte {
	const finText = 0x80 | 0x1
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, finText, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, finText, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, finText, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// frameHeaderMax is the longest header appendTextFrame writes.
const frameHeaderMax = 10
