// bench/echo_server.cc: the grpc++ reference server for the rpc section: lgrpc.bench.Echo on the
// async completion-queue API, every call driven from one thread (grpc++ keeps its own internal
// threads besides). Generated code comes from protoc + grpc_cpp_plugin (bench/run.sh).
//   echo_server ADDRESS [--tls_cert FILE --tls_key FILE]
//                            listens on ADDRESS (127.0.0.1:0 picks a port), prints "PORT n", runs
//                            until killed; with both TLS flags it serves TLS (grpc::
//                            SslServerCredentials with that PEM certificate and key)
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "bench.grpc.pb.h"

using lgrpc::bench::Echo;
using lgrpc::bench::Sample;
using lgrpc::bench::StreamRequest;

namespace {

// A call in progress; the completion queue hands back a pointer to it as the tag.
class Call {
 public:
  virtual ~Call() = default;
  virtual void Proceed(bool ok) = 0;
};

struct Env {
  Echo::AsyncService *service;
  grpc::ServerCompletionQueue *cq;
};

class UnaryCall : public Call {
 public:
  explicit UnaryCall(Env env) : env_(env), responder_(&ctx_) {
    env_.service->RequestUnary(&ctx_, &request_, &responder_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    if (!ok || done_) { delete this; return; }
    new UnaryCall(env_);
    done_ = true;
    responder_.Finish(request_, grpc::Status::OK, this);
  }

 private:
  Env env_;
  grpc::ServerContext ctx_;
  Sample request_;
  grpc::ServerAsyncResponseWriter<Sample> responder_;
  bool done_ = false;
};

class ClientStreamCall : public Call {
 public:
  explicit ClientStreamCall(Env env) : env_(env), reader_(&ctx_) {
    env_.service->RequestClientStream(&ctx_, &reader_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case kRequest:
        if (!ok) { delete this; return; }
        new ClientStreamCall(env_);
        state_ = kRead;
        reader_.Read(&incoming_, this);
        return;
      case kRead:
        if (ok) {
          last_.Swap(&incoming_);
          reader_.Read(&incoming_, this);
          return;
        }
        state_ = kFinish;
        reader_.Finish(last_, grpc::Status::OK, this);
        return;
      case kFinish:
        delete this;
        return;
    }
  }

 private:
  enum State { kRequest, kRead, kFinish };
  Env env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReader<Sample, Sample> reader_;
  Sample incoming_, last_;
  State state_ = kRequest;
};

class ServerStreamCall : public Call {
 public:
  explicit ServerStreamCall(Env env) : env_(env), writer_(&ctx_) {
    env_.service->RequestServerStream(&ctx_, &request_, &writer_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case kRequest:
        if (!ok) { delete this; return; }
        new ServerStreamCall(env_);
        state_ = kWrite;
        Next();
        return;
      case kWrite:
        if (!ok) {  // the client went away
          state_ = kFinish;
          writer_.Finish(grpc::Status::CANCELLED, this);
          return;
        }
        sent_++;
        Next();
        return;
      case kFinish:
        delete this;
        return;
    }
  }

 private:
  void Next() {
    if (sent_ < request_.count()) {
      writer_.Write(request_.sample(), this);
    } else {
      state_ = kFinish;
      writer_.Finish(grpc::Status::OK, this);
    }
  }
  enum State { kRequest, kWrite, kFinish };
  Env env_;
  grpc::ServerContext ctx_;
  StreamRequest request_;
  grpc::ServerAsyncWriter<Sample> writer_;
  int sent_ = 0;
  State state_ = kRequest;
};

class BidiCall : public Call {
 public:
  explicit BidiCall(Env env) : env_(env), stream_(&ctx_) {
    env_.service->RequestBidi(&ctx_, &stream_, env_.cq, env_.cq, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case kRequest:
        if (!ok) { delete this; return; }
        new BidiCall(env_);
        state_ = kRead;
        stream_.Read(&message_, this);
        return;
      case kRead:
        if (!ok) {
          state_ = kFinish;
          stream_.Finish(grpc::Status::OK, this);
          return;
        }
        state_ = kWrite;
        stream_.Write(message_, this);
        return;
      case kWrite:
        if (!ok) {
          state_ = kFinish;
          stream_.Finish(grpc::Status::CANCELLED, this);
          return;
        }
        state_ = kRead;
        stream_.Read(&message_, this);
        return;
      case kFinish:
        delete this;
        return;
    }
  }

 private:
  enum State { kRequest, kRead, kWrite, kFinish };
  Env env_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<Sample, Sample> stream_;
  Sample message_;
  State state_ = kRequest;
};

}  // namespace

// read_file PATH OUT: the whole file into OUT; false when it cannot be read.
static bool read_file(const char *path, std::string *out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return !out->empty();
}

int main(int argc, char **argv) {
  const char *cert_file = nullptr, *key_file = nullptr;
  bool usage = argc < 2;
  for (int i = 2; i < argc && !usage; i += 2) {
    if (i + 1 >= argc) usage = true;
    else if (strcmp(argv[i], "--tls_cert") == 0) cert_file = argv[i + 1];
    else if (strcmp(argv[i], "--tls_key") == 0) key_file = argv[i + 1];
    else usage = true;
  }
  if (usage || (cert_file == nullptr) != (key_file == nullptr)) {
    fprintf(stderr, "usage: echo_server ADDRESS [--tls_cert FILE --tls_key FILE]\n");
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (cert_file) {
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read_file(cert_file, &pair.cert_chain) || !read_file(key_file, &pair.private_key)) {
      fprintf(stderr, "echo_server: cannot read %s or %s\n", cert_file, key_file);
      return 1;
    }
    grpc::SslServerCredentialsOptions options;
    options.pem_key_cert_pairs.push_back(pair);
    creds = grpc::SslServerCredentials(options);
  }
  Echo::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    fprintf(stderr, "echo_server: cannot listen on %s\n", argv[1]);
    return 1;
  }
  printf("PORT %d\n", port);
  fflush(stdout);
  Env env{&service, cq.get()};
  // Several calls of each kind waiting for a client, so a burst of connections is not serialized
  // behind one Request*.
  for (int i = 0; i < 64; i++) {
    new UnaryCall(env);
    new ClientStreamCall(env);
    new ServerStreamCall(env);
    new BidiCall(env);
  }
  void *tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Call *>(tag)->Proceed(ok);
  return 0;
}
