package channels

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/protocol"
)

func TestValidateRoomName(t *testing.T) {
	for _, tc := range []struct {
		room string
		ok   bool
	}{
		{"#haskell", true},
		{"a", true},
		{"réunion", true},
		{"a b", true},
		{"日本語のルーム", true},
		{strings.Repeat("é", 8), true}, // counted in characters, not bytes
		{strings.Repeat("x", 9), false},
		{"", false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"bad\xffutf8", false},
	} {
		err := ValidateRoomName(tc.room, 8)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRoomName(%q) = %v, want ok=%v", tc.room, err, tc.ok)
		}
		var pe *protocol.Error
		if err != nil && (!errors.As(err, &pe) || pe.Code != protocol.CodeInvalidContents) {
			t.Errorf("ValidateRoomName(%q) error %v is not invalid_contents", tc.room, err)
		}
	}
}

func TestClientErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       protocol.Code
		serverSide bool
	}{
		{protocol.Errorf(protocol.CodeNotMember, "x"), protocol.CodeNotMember, false},
		{brokerError(errors.New("dial tcp: connection refused")), protocol.CodeUnavailable, true},
		{errors.New("a bug"), protocol.CodeInternal, true},
	} {
		got, serverSide := ClientError(tc.err)
		if got.Code != tc.code || serverSide != tc.serverSide {
			t.Errorf("ClientError(%v) = %s/%v, want %s/%v", tc.err, got.Code, serverSide, tc.code, tc.serverSide)
		}
	}
}
