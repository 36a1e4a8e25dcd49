package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/server"
)

// startNode runs a node on the embedded broker on a free loopback port,
// for the examples, and returns its WebSocket URL and how to stop it.
func startNode() (url string, stop func()) {
	cfg, err := config.Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic(err)
	}
	n, err := node.New(cfg, broker.NewMemory(node.BrokerOptions(cfg)), slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	if err := n.Start(); err != nil {
		panic(err)
	}
	srv := server.New(n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	return "ws://" + ln.Addr().String() + "/websockets", func() { cancel(); <-done; _ = n.Close() }
}

// Join a room, send a message and receive it back, as every member does.
func Example() {
	url, stop := startNode()
	defer stop()
	ctx := context.Background()

	conn, err := client.Dial(ctx, url+"?user=alice", client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println("greeted as", conn.User())

	members, _, err := conn.Join(ctx, "#haskell", client.JoinOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("members:", members.Users)

	id, err := conn.SendMessage(ctx, "#haskell", "Monad monoid category whatever")
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		f, err := conn.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		var m protocol.RoomMessage
		if f.Type != protocol.TypeNewMessage || f.Decode(&m) != nil {
			continue
		}
		fmt.Printf("%s in %s: %s (the id SendMessage returned: %v)\n", m.User, m.Room, m.Message, m.ID == id)
		return
	}
	// Output:
	// greeted as alice
	// members: [alice]
	// alice in #haskell: Monad monoid category whatever (the id SendMessage returned: true)
}

// A refused request is a *protocol.Error carrying the server's code.
func ExampleConn_SendMessage_error() {
	url, stop := startNode()
	defer stop()
	ctx := context.Background()
	conn, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_, err = conn.SendMessage(ctx, "#not-joined", "hello?")
	if perr, ok := err.(*protocol.Error); ok {
		fmt.Println(perr.Code)
	}
	// Output:
	// not_member
}

// A Reconnecting client keeps its rooms across reconnects; Next returns
// each room message once.
func ExampleReconnect() {
	url, stop := startNode()
	defer stop()
	ctx := context.Background()

	r := client.Reconnect(client.ReconnectOptions{Backoff: client.Backoff{Max: 10 * time.Second}}, url+"?user=bob")
	defer r.Close()

	if _, _, err := r.Join(ctx, "#go", client.JoinOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.State().State)
	if _, err := r.SendMessage(ctx, "#go", "hi"); err != nil {
		fmt.Println(err)
		return
	}
	for {
		f, err := r.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		var m protocol.RoomMessage
		if f.Type == protocol.TypeNewMessage && f.Decode(&m) == nil {
			fmt.Println(m.User+":", m.Message)
			return
		}
	}
	// Output:
	// online
	// bob: hi
}
