// bench/compile_cpp.cc: C++ protobuf's in-process compiler as the reference for the compiler
// section. The .proto text is read once; each iteration runs Tokenizer + compiler::Parser into a
// FileDescriptorProto and DescriptorPool::BuildFile into a fresh DescriptorPool (no caching).
//   compile_cpp FILE VIRTUAL_NAME   prints RESULT compile.cpp NS
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <google/protobuf/compiler/parser.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "timing.h"

namespace pb = google::protobuf;

namespace {

class Errors : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string &message) override {
    fprintf(stderr, "compile_cpp: %d:%d: %s\n", line + 1, column + 1, message.c_str());
    failed = true;
  }
  bool failed = false;
};

struct Ctx {
  std::string text;
  std::string name;
  size_t sink = 0;
  bool failed = false;
};

void OpCompile(void *p) {
  Ctx *c = static_cast<Ctx *>(p);
  Errors errors;
  pb::io::ArrayInputStream input(c->text.data(), static_cast<int>(c->text.size()));
  pb::io::Tokenizer tokenizer(&input, &errors);
  pb::compiler::Parser parser;
  parser.RecordErrorsTo(&errors);
  pb::FileDescriptorProto fdp;
  if (!parser.Parse(&tokenizer, &fdp)) { c->failed = true; return; }
  fdp.set_name(c->name);
  pb::DescriptorPool pool;
  const pb::FileDescriptor *file = pool.BuildFile(fdp);
  if (!file) { c->failed = true; return; }
  c->sink += static_cast<size_t>(file->message_type_count());
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: compile_cpp FILE VIRTUAL_NAME\n");
    return 2;
  }
  std::ifstream f(argv[1]);
  if (!f) { fprintf(stderr, "compile_cpp: cannot read %s\n", argv[1]); return 1; }
  std::stringstream ss;
  ss << f.rdbuf();
  Ctx c;
  c.text = ss.str();
  c.name = argv[2];
  OpCompile(&c);
  if (c.failed) { fprintf(stderr, "compile_cpp: %s does not compile\n", argv[1]); return 1; }
  printf("RESULT compile.cpp %.1f\n", bench_median_ns(OpCompile, &c, BENCH_RUNS));
  return c.failed ? 1 : 0;
}
