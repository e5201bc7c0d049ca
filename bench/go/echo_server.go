// bench/go/echo_server.go: the grpc-go reference server for the rpc section (the go column):
// lgrpc.bench.Echo on grpc-go's default server, with GOMAXPROCS 1 so Go code runs on one core like
// the other servers (bench/rpc.sh pins it with taskset too). Built by bench/go/build.sh from
// Debian's grpc-go 1.33 sources; the message types and the Echo service glue come from protoc's
// Go plugin at bench time (bench/out/go, never committed).
//
//	echo_server_go ADDRESS   listens on ADDRESS (127.0.0.1:0 picks a port), prints "PORT n",
//	                         serves until killed
//
// The handlers mirror bench/echo_server.cc and bench/rpc_server.lua: Unary answers the decoded
// request (grpc-go unmarshals it and marshals the answer again), ClientStream answers the last
// message received (an empty Sample when there was none), ServerStream sends `count` copies of
// `sample`, Bidi echoes each message.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"

	"google.golang.org/grpc"

	pb "lgrpc/bench"
)

type echo struct{}

func (echo) Unary(ctx context.Context, request *pb.Sample) (*pb.Sample, error) {
	return request, nil
}

func (echo) ClientStream(stream pb.Echo_ClientStreamServer) error {
	last := &pb.Sample{}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(last)
		}
		if err != nil {
			return err
		}
		last = msg
	}
}

func (echo) ServerStream(request *pb.StreamRequest, stream pb.Echo_ServerStreamServer) error {
	sample := request.GetSample()
	if sample == nil {
		sample = &pb.Sample{}
	}
	for i := int32(0); i < request.GetCount(); i++ {
		if err := stream.Send(sample); err != nil {
			return err
		}
	}
	return nil
}

func (echo) Bidi(stream pb.Echo_BidiServer) error {
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: echo_server_go ADDRESS")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Printf("not available: cannot listen on %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	pb.RegisterEchoServer(server, echo{})
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "echo_server_go: %v\n", err)
		os.Exit(1)
	}
}
