// bench/echo_client.cc: the grpc++ async client of the rpc section (one thread, one completion
// queue, every call chained through callbacks). Prints RESULT lines for bench/report.lua.
//   echo_client check ADDR FILE                   one Unary call with the Sample in FILE: status OK
//                                                 and the echo equal to what was sent, or exit 1
//   echo_client unary ADDR FILE NAME IMPL SECS INFLIGHT [SERVER_PID]
//                                                 closed loop, INFLIGHT calls outstanding: calls/s,
//                                                 client CPU us/call, server CPU us/call
//   echo_client latency ADDR FILE NAME IMPL SECS RATE
//                                                 open loop at RATE calls/s: p50 and p99 in us,
//                                                 measured from each call's scheduled start
//   echo_client bidi-pipelined ADDR FILE NAME IMPL SECS WINDOW   one Bidi stream, up to WINDOW
//                                                 messages unanswered: messages/s
//   echo_client bidi-pingpong ADDR FILE NAME IMPL SECS          one Bidi stream, one at a time
//   echo_client server-stream ADDR FILE NAME IMPL SECS COUNT    ServerStream calls of COUNT
//                                                 messages, one after another: messages/s
// NAME is the row (e.g. client-unary-small), IMPL the column (cpp for this client against any
// server, or the server's name when this client is the load generator).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include "bench.grpc.pb.h"

using lgrpc::bench::Echo;
using lgrpc::bench::Sample;
using lgrpc::bench::StreamRequest;
using Clock = std::chrono::steady_clock;

namespace {

// A completion-queue tag: the continuation to run when the operation completes.
struct Tag {
  std::function<void(bool)> fn;
};
void *Then(std::function<void(bool)> fn) { return new Tag{std::move(fn)}; }

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double SelfCpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of another process, from /proc/PID/stat; negative when unreadable.
double ProcCpuSeconds(const char *pid) {
  if (!pid) return -1;
  std::ifstream f(std::string("/proc/") + pid + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; i++) {
    if (i == 14) utime = atof(field.c_str());
    if (i == 15) stime = atof(field.c_str());
  }
  return (utime + stime) / sysconf(_SC_CLK_TCK);
}

class Client {
 public:
  Client(const std::string &addr, const Sample &sample) : sample_(sample) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    stub_ = Echo::NewStub(grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
  }

  // Runs the queue until `done` says so or the deadline passes; false on deadline.
  bool Drive(const std::function<bool()> &done, Clock::time_point deadline) {
    while (!done()) {
      void *tag;
      bool ok;
      // grpc++ takes system_clock deadlines only; the benchmark's clock is steady_clock.
      auto left = deadline - Clock::now();
      if (left < Clock::duration::zero()) left = Clock::duration::zero();
      auto st = cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() +
                              std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
      if (st == grpc::CompletionQueue::TIMEOUT) return false;
      if (st == grpc::CompletionQueue::SHUTDOWN) return false;
      Tag *t = static_cast<Tag *>(tag);
      t->fn(ok);
      delete t;
    }
    return true;
  }

  // One Unary call; cb(status, response).
  void Unary(std::function<void(const grpc::Status &, const Sample &)> cb) {
    struct C {
      grpc::ClientContext ctx;
      Sample resp;
      grpc::Status status;
      std::unique_ptr<grpc::ClientAsyncResponseReader<Sample>> rpc;
    };
    auto *c = new C;
    c->rpc = stub_->PrepareAsyncUnary(&c->ctx, sample_, &cq_);
    c->rpc->StartCall();
    c->rpc->Finish(&c->resp, &c->status, Then([c, cb](bool) {
      cb(c->status, c->resp);
      delete c;
    }));
  }

  const Sample &sample() const { return sample_; }
  Echo::Stub *stub() { return stub_.get(); }
  grpc::CompletionQueue *cq() { return &cq_; }

 private:
  Sample sample_;
  std::unique_ptr<Echo::Stub> stub_;
  grpc::CompletionQueue cq_;
};

void Result(const char *name, const char *metric, const char *impl, double v) {
  printf("RESULT rpc.%s.%s.%s %.2f\n", name, metric, impl, v);
  fflush(stdout);
}

int Check(Client &cl) {
  bool finished = false, good = false;
  std::string why;
  cl.Unary([&](const grpc::Status &st, const Sample &resp) {
    finished = true;
    if (!st.ok()) {
      why = "grpc-status " + std::to_string(st.error_code()) + ": " + st.error_message();
    } else if (!google::protobuf::util::MessageDifferencer::Equals(resp, cl.sample())) {
      why = "echo differs (" + std::to_string(resp.ByteSizeLong()) + " bytes back, " +
            std::to_string(cl.sample().ByteSizeLong()) + " sent)";
    } else {
      good = true;
    }
  });
  if (!cl.Drive([&] { return finished; }, Clock::now() + std::chrono::seconds(10))) why = "no answer in 10 s";
  if (!good) {
    printf("CHECK FAILED %s\n", why.c_str());
    return 1;
  }
  printf("CHECK ok grpc-status 0, %zu bytes echoed equal\n", cl.sample().ByteSizeLong());
  return 0;
}

int UnaryLoad(Client &cl, const char *name, const char *impl, double secs, int inflight, const char *server_pid) {
  long done = 0, failed = 0;
  int outstanding = 0;
  bool stop = false;
  std::string last_error;
  std::function<void()> start = [&] {
    outstanding++;
    cl.Unary([&](const grpc::Status &st, const Sample &) {
      outstanding--;
      if (st.ok()) {
        done++;
      } else {
        failed++;
        last_error = "code " + std::to_string(st.error_code()) + ": " + st.error_message();
      }
      if (!stop) start();
    });
  };
  // Warm up for a tenth of the run (connection, allocator, server threads), then measure.
  auto t0 = Clock::now();
  for (int i = 0; i < inflight; i++) start();
  cl.Drive([] { return false; }, t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs / 10)));
  long done0 = done;
  double cpu0 = SelfCpuSeconds(), srv0 = ProcCpuSeconds(server_pid);
  auto t1 = Clock::now();
  cl.Drive([] { return false; }, t1 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)));
  auto t2 = Clock::now();
  long n = done - done0;
  double cpu = SelfCpuSeconds() - cpu0, srv = ProcCpuSeconds(server_pid) - srv0;
  stop = true;
  cl.Drive([&] { return outstanding == 0; }, Clock::now() + std::chrono::seconds(10));
  if (n == 0 || failed) {
    printf("UNAVAILABLE rpc.%s.calls/s.%s %ld calls failed (last: %s), %ld succeeded\n", name, impl, failed,
           last_error.c_str(), n);
    return 1;
  }
  Result(name, "calls/s", impl, n / Seconds(t1, t2));
  Result(name, "client-cpu-us/call", impl, cpu * 1e6 / n);
  if (server_pid && srv >= 0) Result(name, "server-cpu-us/call", impl, srv * 1e6 / n);
  return 0;
}

int Latency(Client &cl, const char *name, const char *impl, double secs, double rate) {
  std::vector<double> lat;
  long failed = 0;
  std::string last_error;
  int outstanding = 0;
  auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
  auto warm = t0 + (end - t0) / 10;
  auto next = t0;
  while (Clock::now() < end) {
    while (next <= Clock::now() && next < end) {
      auto scheduled = next;
      bool record = scheduled >= warm;
      outstanding++;
      cl.Unary([&, scheduled, record](const grpc::Status &st, const Sample &) {
        outstanding--;
        if (!st.ok()) {
          failed++;
          last_error = "code " + std::to_string(st.error_code()) + ": " + st.error_message();
          return;
        }
        if (record) lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - scheduled).count());
      });
      next += interval;
    }
    cl.Drive([] { return false; }, std::min(next, end));
  }
  cl.Drive([&] { return outstanding == 0; }, Clock::now() + std::chrono::seconds(10));
  if (lat.empty() || failed) {
    printf("UNAVAILABLE rpc.%s.p50-us.%s %ld calls failed (last: %s)\n", name, impl, failed, last_error.c_str());
    return 1;
  }
  std::sort(lat.begin(), lat.end());
  Result(name, "p50-us", impl, lat[lat.size() / 2]);
  Result(name, "p99-us", impl, lat[std::min(lat.size() - 1, lat.size() * 99 / 100)]);
  return 0;
}

// One Bidi stream: up to `window` messages sent and not yet answered (1 = ping-pong).
int BidiLoad(Client &cl, const char *name, const char *impl, double secs, int window) {
  grpc::ClientContext ctx;
  Sample incoming;
  grpc::Status status;
  auto stream = cl.stub()->PrepareAsyncBidi(&ctx, cl.cq());
  long sent = 0, received = 0;
  bool writing = false, stop = false, closed = false, finished = false, broken = false;
  auto t0 = Clock::now();
  auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs / 10));
  long received_at_start = -1;
  Clock::time_point start_time;
  std::function<void()> pump;
  std::function<void()> read = [&] {
    stream->Read(&incoming, Then([&](bool ok) {
      if (!ok) {
        stream->Finish(&status, Then([&](bool) { finished = true; }));
        return;
      }
      received++;
      if (received_at_start < 0 && Clock::now() >= measure_from) {
        received_at_start = received;
        start_time = Clock::now();
      }
      read();
      pump();
    }));
  };
  pump = [&] {
    if (writing || closed) return;
    if (stop) {
      if (received == sent) {
        closed = true;
        stream->WritesDone(Then([](bool) {}));
      }
      return;
    }
    if (sent - received >= window) return;
    writing = true;
    sent++;
    stream->Write(cl.sample(), Then([&](bool ok) {
      writing = false;
      if (!ok) { broken = true; stop = true; return; }
      pump();
    }));
  };
  stream->StartCall(Then([&](bool ok) {
    if (!ok) { broken = true; finished = true; return; }
    read();
    pump();
  }));
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs * 1.1));
  cl.Drive([] { return false; }, end);
  auto t2 = Clock::now();
  long n = received - (received_at_start < 0 ? received : received_at_start);
  stop = true;
  pump();
  if (!cl.Drive([&] { return finished; }, Clock::now() + std::chrono::seconds(10))) {
    ctx.TryCancel();
    cl.Drive([&] { return finished; }, Clock::now() + std::chrono::seconds(5));
  }
  if (broken || !status.ok() || n <= 0) {
    printf("UNAVAILABLE rpc.%s.msgs/s.%s stream failed: %s\n", name, impl,
           status.ok() ? "no messages" : status.error_message().c_str());
    return 1;
  }
  Result(name, "msgs/s", impl, n / Seconds(start_time, t2));
  return 0;
}

// ServerStream calls of `count` messages each, one after another, for `secs`.
int ServerStreamLoad(Client &cl, const char *name, const char *impl, double secs, int count) {
  StreamRequest req;
  *req.mutable_sample() = cl.sample();
  req.set_count(count);
  long received = 0;
  bool failed = false;
  std::string why;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
  while (Clock::now() < end && !failed) {
    grpc::ClientContext ctx;
    Sample incoming;
    grpc::Status status;
    bool finished = false;
    auto stream = cl.stub()->PrepareAsyncServerStream(&ctx, req, cl.cq());
    std::function<void()> read = [&] {
      stream->Read(&incoming, Then([&](bool ok) {
        if (!ok) {
          stream->Finish(&status, Then([&](bool) { finished = true; }));
          return;
        }
        received++;
        read();
      }));
    };
    stream->StartCall(Then([&](bool ok) {
      if (!ok) { failed = true; finished = true; return; }
      read();
    }));
    if (!cl.Drive([&] { return finished; }, end + std::chrono::seconds(30))) {
      ctx.TryCancel();
      cl.Drive([&] { return finished; }, Clock::now() + std::chrono::seconds(5));
      failed = true;
      why = "call did not finish";
    } else if (!status.ok()) {
      failed = true;
      why = status.error_message();
    }
  }
  auto t2 = Clock::now();
  if (failed || received == 0) {
    printf("UNAVAILABLE rpc.%s.msgs/s.%s %s\n", name, impl, why.c_str());
    return 1;
  }
  Result(name, "msgs/s", impl, received / Seconds(t0, t2));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: echo_client MODE ADDR FILE [NAME IMPL SECS ARG [SERVER_PID]] (see the source)\n");
    return 2;
  }
  std::string mode = argv[1];
  std::ifstream f(argv[3], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  Sample sample;
  if (!f || !sample.ParseFromString(ss.str())) {
    fprintf(stderr, "echo_client: %s is not a Sample\n", argv[3]);
    return 2;
  }
  Client cl(argv[2], sample);
  if (mode == "check") return Check(cl);
  if (argc < 8) {
    fprintf(stderr, "echo_client %s: NAME IMPL SECS ARG expected\n", mode.c_str());
    return 2;
  }
  const char *name = argv[4], *impl = argv[5];
  double secs = atof(argv[6]);
  double arg = atof(argv[7]);
  if (mode == "unary") return UnaryLoad(cl, name, impl, secs, (int)arg, argc > 8 ? argv[8] : nullptr);
  if (mode == "latency") return Latency(cl, name, impl, secs, arg);
  if (mode == "bidi-pipelined") return BidiLoad(cl, name, impl, secs, (int)arg);
  if (mode == "bidi-pingpong") return BidiLoad(cl, name, impl, secs, 1);
  if (mode == "server-stream") return ServerStreamLoad(cl, name, impl, secs, (int)arg);
  fprintf(stderr, "echo_client: unknown mode %s\n", mode.c_str());
  return 2;
}
