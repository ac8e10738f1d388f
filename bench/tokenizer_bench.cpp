// Tokenizer throughput (src/tokens) on one core, in bytes per second, for each encoding on
// English prose (the repository's docs without code blocks and tables), code (the repository's
// C++ sources) and CJK text (Chinese and Japanese sentences); and the time to load each
// encoding's ranks. Needs models/ (scripts/setup.sh).
//
//   build/release/orchestra_bench_tokenizer [--benchmark_filter=...]

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "common/model_files.hpp"
#include "tokens/encoding.hpp"

namespace {

namespace fs = std::filesystem;
using orchestra::tokens::Encoding;

constexpr std::size_t kTextBytes = 1 << 20;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Repeats `text` up to kTextBytes, cut at a line end.
std::string Fill(const std::string& text) {
  std::string out;
  if (text.empty()) return out;
  while (out.size() < kTextBytes) {
    out += text;
  }
  out.resize(out.rfind('\n', kTextBytes) + 1);
  return out;
}

std::string Prose() {
  std::string text;
  std::vector<fs::path> files = {fs::path(ORCHESTRA_SOURCE_DIR) / "README.md"};
  for (const auto& entry : fs::directory_iterator(fs::path(ORCHESTRA_SOURCE_DIR) / "docs")) {
    if (entry.path().extension() == ".md") files.push_back(entry.path());
  }
  for (const fs::path& file : files) {
    std::istringstream lines(ReadFile(file));
    bool in_code = false;
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("```")) in_code = !in_code;
      if (in_code || line.starts_with("|") || line.starts_with("```") || line.starts_with("    ")) {
        continue;
      }
      text += line + "\n";
    }
  }
  return Fill(text);
}

std::string Code() {
  std::string text;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(ORCHESTRA_SOURCE_DIR) / "src")) {
    const fs::path& p = entry.path();
    if (p.extension() == ".cpp" || p.extension() == ".hpp") text += ReadFile(p);
  }
  return Fill(text);
}

std::string Cjk() {
  static constexpr std::string_view kSentences[] = {
      "今天的天气很好，我们一起去公园散步吧。",
      "这个服务器负责把应用程序的请求转发给不同的模型提供商。",
      "如果上游服务出现故障，系统会自动切换到备用的路线，并记录每一次重试。",
      "我们需要在发送请求之前准确地计算令牌数量，以便控制预算和速率限制。",
      "他在北京大学学习计算机科学，毕业后在一家互联网公司工作了五年。",
      "为了降低延迟，每个线程都有自己的连接池，请求路径上没有锁。",
      "请把这份文件翻译成英文，并在明天上午十点之前发给我。",
      "中国的传统节日有春节、端午节和中秋节，每个节日都有不同的习俗。",
      "東京は日本の首都で、世界でも有数の大都市です。",
      "このサーバーはリクエストを受け取り、適切なモデルに転送します。",
      "明日の会議は午後三時から始まりますので、資料を準備しておいてください。",
      "日本語の文章には、ひらがな、カタカナ、漢字が混在しています。",
      "トークンの数を正確に数えることで、コストを事前に見積もることができます。",
      "春になると、桜の花が咲いて、多くの人がお花見に出かけます。",
      "我们的测试覆盖了代码、表情符号、中文、日文以及各种空白字符。",
      "模型的回答需要简洁、准确，并且引用提供的上下文。",
  };
  std::string text;
  std::uint64_t state = 1;
  while (text.size() < kTextBytes) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    text += kSentences[(state >> 33) % std::size(kSentences)];
    if ((state >> 20) % 5 == 0) text += "\n";
  }
  return text;
}

const Encoding& Load(std::string_view name) {
  auto encoding = orchestra::tokens::Get(name);
  if (!encoding) {
    std::cerr << encoding.error().message << "\n";
    std::exit(1);
  }
  return **encoding;
}

const std::string& Text(std::string_view kind) {
  static const std::string prose = Prose();
  static const std::string code = Code();
  static const std::string cjk = Cjk();
  return kind == "prose" ? prose : kind == "code" ? code : cjk;
}

void BM_Encode(benchmark::State& state, std::string_view encoding, std::string_view kind) {
  const Encoding& enc = Load(encoding);
  const std::string& text = Text(kind);
  std::vector<std::uint32_t> ids;
  for (auto _ : state) {
    ids.clear();
    enc.EncodeInto(text, ids);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["bytes/token"] =
      static_cast<double>(text.size()) / static_cast<double>(ids.size());
}

void BM_Count(benchmark::State& state, std::string_view encoding, std::string_view kind) {
  const Encoding& enc = Load(encoding);
  const std::string& text = Text(kind);
  for (auto _ : state) {
    benchmark::DoNotOptimize(enc.Count(text));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

// Reading, parsing and indexing a rank file: what the first Get() (or Preload) costs.
void BM_Load(benchmark::State& state, std::string_view encoding) {
  const std::vector<fs::path> dirs = orchestra::ModelSearchDirs();
  std::size_t memory = 0;
  for (auto _ : state) {
    auto loaded = Encoding::Load(encoding, dirs);
    if (!loaded) {
      state.SkipWithError(loaded.error().message.c_str());
      return;
    }
    memory = (*loaded)->MemoryBytes();
  }
  state.counters["MiB"] = static_cast<double>(memory) / (1 << 20);
}

#define ORCHESTRA_TOKENIZER_BENCH(enc)                      \
  BENCHMARK_CAPTURE(BM_Encode, enc##_prose, #enc, "prose"); \
  BENCHMARK_CAPTURE(BM_Encode, enc##_code, #enc, "code");   \
  BENCHMARK_CAPTURE(BM_Encode, enc##_cjk, #enc, "cjk");     \
  BENCHMARK_CAPTURE(BM_Count, enc##_prose, #enc, "prose");  \
  BENCHMARK_CAPTURE(BM_Load, enc, #enc)->Unit(benchmark::kMillisecond)->Iterations(10)

ORCHESTRA_TOKENIZER_BENCH(cl100k_base);
ORCHESTRA_TOKENIZER_BENCH(o200k_base);

}  // namespace

BENCHMARK_MAIN();
