#include "unit/tokens/corpus.hpp"

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace orchestra::tokens::testing {
namespace {

// splitmix64: the same sequence on every platform and standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
    return z ^ (z >> 31);
  }
  std::size_t Below(std::size_t n) { return static_cast<std::size_t>(Next() % n); }
  std::size_t Between(std::size_t lo, std::size_t hi) { return lo + Below(hi - lo + 1); }
  bool Percent(int p) { return Below(100) < static_cast<std::size_t>(p); }
  template <class T>
  const T& Pick(std::span<const T> items) {
    return items[Below(items.size())];
  }
  template <class T, std::size_t N>
  const T& Pick(const std::array<T, N>& items) {
    return items[Below(N)];
  }

 private:
  std::uint64_t state_;
};

using Words = std::span<const std::string_view>;

constexpr std::array<std::string_view, 96> kEnglish = {
    "the",      "of",        "and",        "to",          "in",
    "is",       "that",      "for",        "it",          "as",
    "was",      "with",      "be",         "by",          "on",
    "not",      "he",        "I",          "this",        "are",
    "or",       "his",       "from",       "at",          "which",
    "but",      "have",      "an",         "had",         "they",
    "you",      "were",      "their",      "one",         "all",
    "we",       "can",       "her",        "has",         "there",
    "been",     "if",        "more",       "when",        "will",
    "would",    "who",       "so",         "no",          "The",
    "However",  "Orchestra", "tokenizer",  "gateway",     "latency",
    "requests", "server",    "model",      "budget",      "counting",
    "encoding", "Unicode",   "characters", "OpenAI",      "GPT",
    "JSON",     "HTTP",      "API",        "mississippi", "antidisestablishmentarianism",
    "naïve",    "café",      "résumé",     "coöperate",   "über",
    "Straße",   "jalapeño",  "façade",     "don't",       "it's",
    "we're",    "they've",   "I'm",        "you'll",      "he'd",
    "DON'T",    "It'S",      "WE'RE",      "y'all",       "rock'n'roll",
    "o'clock",  "'tis",      "James'",     "ma'am",       "isn't"};
constexpr std::array<std::string_view, 12> kSentenceEnd = {".",  ".",   ".",  "!", "?", "...",
                                                           "?!", ".\"", "!'", ":", ";", "…"};
constexpr std::array<std::string_view, 10> kInnerPunct = {",",  ",",  ";", ":",  " -",
                                                          " —", " (", ")", "\"", "'"};

void AppendWords(Rng& rng, std::string& out, Words words, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += rng.Percent(5) ? "  " : " ";
    out += rng.Pick(words);
    if (rng.Percent(12)) out += rng.Pick(kInnerPunct);
  }
}

std::string Prose(Rng& rng) {
  std::string out;
  const std::size_t sentences = rng.Between(1, 6);
  for (std::size_t s = 0; s < sentences; ++s) {
    if (s > 0) out += rng.Percent(20) ? (rng.Percent(50) ? "\n\n" : "\n") : " ";
    std::string sentence;
    AppendWords(rng, sentence, kEnglish, rng.Between(1, 24));
    if (rng.Percent(60) && sentence[0] >= 'a' && sentence[0] <= 'z') sentence[0] -= 32;
    out += sentence;
    out += rng.Pick(kSentenceEnd);
  }
  if (rng.Percent(10)) out += rng.Percent(50) ? " " : "\n";
  if (rng.Percent(5)) out = "\"" + out + "\"";
  return out;
}

constexpr std::array<std::string_view, 40> kCodeLines = {
    "#include <vector>",
    "int main(int argc, char** argv) {",
    "  return argc > 1 ? std::atoi(argv[1]) : 0;",
    "}",
    "for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];",
    "if (x != nullptr && x->next) { x = x->next; }",
    "def tokenize(text: str) -> list[int]:",
    "    return [ord(c) for c in text if not c.isspace()]",
    "class Foo(Bar):  # a comment",
    "    \"\"\"Docstring with 'quotes' and \\\"escapes\\\".\"\"\"",
    "const url = \"https://example.com/v1/chat/completions?stream=true&n=2\";",
    "export default async function handler(req, res) { await next(); }",
    "let re = /^[a-z0-9_.-]+@[a-z]+\\.[a-z]{2,}$/i;",
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC;",
    "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
    "<div class=\"container\"><p>Hello, <b>world</b>!</p></div>",
    "ls -la /usr/local/bin | grep -E '^d' > /tmp/out.txt 2>&1",
    "path = \"C:\\\\Program Files\\\\Orchestra\\\\orchestra.exe\"",
    "// TODO: handle the case where the buffer is full",
    "/* block comment */ x = y / z; w //= 2; u = v // 3",
    "#!/usr/bin/env bash",
    "set -euo pipefail",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "match value { Some(v) => v, None => return Err(e) }",
    "x <<= 2; y >>>= 1; z **= 3; a ||= b; c ?\?= d;",
    "std::vector<std::uint32_t> ids = enc.Encode(\"hello\");",
    "    }",
    "        ]",
    "  - name: openai",
    "    base_url: https://api.openai.com/v1",
    "key: value  # yaml comment",
    "0x7fffffff, 0b1010, 1e-9, 3.14159f, 42ULL",
    "camelCaseIdentifier = snake_case_identifier + SCREAMING_CASE_CONSTANT;",
    "XMLHttpRequest HTTPSConnection getHTTPResponseCode parseJSONString",
    "assert(decode(encode(x)) == x);",
    "@@ -1,4 +1,5 @@",
    "+    added line",
    "-    removed line",
    "\\begin{equation} e^{i\\pi} + 1 = 0 \\end{equation}",
    "=== RUN   TestSomething/sub_test-1 ---"};

std::string Code(Rng& rng) {
  std::string out;
  const std::size_t lines = rng.Between(1, 12);
  const bool crlf = rng.Percent(15);
  const bool tabs = rng.Percent(30);
  for (std::size_t l = 0; l < lines; ++l) {
    const std::size_t depth = rng.Below(4);
    for (std::size_t d = 0; d < depth; ++d) {
      out += tabs ? "\t" : (rng.Percent(50) ? "    " : "  ");
    }
    out += rng.Pick(kCodeLines);
    if (rng.Percent(8)) out += rng.Percent(50) ? " " : "\t";
    if (l + 1 < lines || rng.Percent(40)) out += crlf ? "\r\n" : "\n";
    if (rng.Percent(10)) out += crlf ? "\r\n" : "\n";
  }
  return out;
}

constexpr std::array<std::string_view, 24> kNumberDecor = {",", ".", "-", "+", "/", ":", "%",  "$",
                                                           "€", "£", "e", "E", "x", " ", "  ", "\n",
                                                           "_", "'", "°", "±", "×", "#", "(",  ")"};
constexpr std::array<std::string_view, 16> kOtherDigits = {
    "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "０１２３４５６７８９",
    "²³¹",        "½¼¾",        "ⅫⅣⅸ",
    "①②③",        "𝟘𝟙𝟚",        "೧೨೩",
    "๑๒๓",        "〇",         "𒐀𒐁",
    "¹²³⁴",       "₀₁₂",        "߀߁߂",
    "꘠꘡"};

std::string Digits(Rng& rng, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += static_cast<char>('0' + rng.Below(10));
  }
  return out;
}

std::string Numbers(Rng& rng) {
  std::string out;
  const std::size_t parts = rng.Between(1, 6);
  for (std::size_t p = 0; p < parts; ++p) {
    switch (rng.Below(6)) {
      case 0:
        out += Digits(rng, rng.Between(1, 40));
        break;
      case 1:
        out += Digits(rng, rng.Between(1, 3));
        for (std::size_t g = rng.Between(1, 5); g > 0; --g) {
          out += "," + Digits(rng, 3);
        }
        break;
      case 2:
        out += rng.Pick(kOtherDigits);
        break;
      case 3:
        out += Digits(rng, rng.Between(1, 6)) + "." + Digits(rng, rng.Between(1, 12));
        break;
      case 4:
        out += std::string(rng.Pick(kEnglish)) + Digits(rng, rng.Between(1, 8));
        break;
      default:
        out += Digits(rng, 4) + "-" + Digits(rng, 2) + "-" + Digits(rng, 2) + "T" + Digits(rng, 2) +
               ":" + Digits(rng, 2) + "Z";
        break;
    }
    if (p + 1 < parts) out += rng.Pick(kNumberDecor);
  }
  return out;
}

constexpr std::array<std::string_view, 22> kSpaces = {
    " ",      " ",      "  ",     "\t",     "\n",     "\r\n",   "\r",     "\n\n",
    "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f", "\u205f", "\u2028", "\u2029",
    "\v",     "\f",     "\u1680", "\ufeff", "\u0085", "\u200b"};
constexpr std::array<std::string_view, 14> kBetweenSpaces = {
    "word", "Word", "x", "!", "?!", "42", "1234567", "中文", "'s", "'S", "é", "\u0301", "//", "-"};

std::string Whitespace(Rng& rng) {
  std::string out;
  const std::size_t items = rng.Between(1, 10);
  for (std::size_t i = 0; i < items; ++i) {
    for (std::size_t k = rng.Between(0, 5); k > 0; --k) {
      out += rng.Pick(kSpaces);
    }
    if (rng.Percent(70)) out += rng.Pick(kBetweenSpaces);
  }
  return out;
}

constexpr std::array<std::string_view, 60> kHanzi = {
    "的", "一", "是", "不", "了", "人", "我", "在", "有", "他", "这", "中", "大", "来", "上",
    "国", "个", "到", "说", "们", "为", "子", "和", "你", "地", "出", "道", "也", "时", "年",
    "得", "就", "那", "要", "下", "以", "生", "会", "自", "着", "去", "之", "过", "家", "学",
    "对", "可", "她", "里", "后", "小", "么", "心", "多", "天", "而", "能", "好", "都", "然"};
constexpr std::array<std::string_view, 12> kCjkPunct = {"，", "。", "！", "？", "；", "：",
                                                        "「", "」", "（", "）", "、", "・"};
constexpr std::array<std::string_view, 24> kJapanese = {
    "これは", "テスト", "です",     "日本語",   "の",   "文章",       "を",         "トークン",
    "化",     "します", "カタカナ", "ひらがな", "東京", "ありがとう", "ございます", "ｶﾀｶﾅ",
    "ー",     "っ",     "ゃ",       "漢字",     "と",   "が",         "に",         "は"};
constexpr std::array<std::string_view, 16> kKorean = {
    "안녕하세요", "세계",   "한국어", "토큰",   "테스트", "입니다",     "감사합니다", "서울",
    "오늘",       "날씨가", "좋네요", "ㄱㄴㄷ", "ㅏㅑ",   "프로그래밍", "언어",       "는"};

std::string Cjk(Rng& rng) {
  std::string out;
  const std::size_t items = rng.Between(1, 30);
  const std::size_t kind = rng.Below(4);
  for (std::size_t i = 0; i < items; ++i) {
    switch (kind == 3 ? rng.Below(3) : kind) {
      case 0:
        out += rng.Pick(kHanzi);
        if (rng.Percent(12)) out += rng.Pick(kCjkPunct);
        break;
      case 1:
        out += rng.Pick(kJapanese);
        if (rng.Percent(10)) out += rng.Pick(kCjkPunct);
        break;
      default:
        out += rng.Pick(kKorean);
        out += rng.Percent(70) ? " " : (rng.Percent(50) ? ". " : ", ");
        break;
    }
    if (rng.Percent(5)) out += std::string(" ") + std::string(rng.Pick(kEnglish)) + " ";
    if (rng.Percent(4)) out += Digits(rng, rng.Between(1, 5));
    if (rng.Percent(3)) out += "ＡＢＣ";
  }
  return out;
}

constexpr std::array<std::string_view, 30> kEmoji = {"😀",           "😂",
                                                     "🥲",        "❤️",
                                                     "👍",           "👍🏽",
                                                     "🙏🏿",    "👨‍👩‍👧‍👦",
                                                     "🧑‍💻", "🏳️‍🌈",
                                                     "🇫🇷",          "🇯🇵",
                                                     "1️⃣",     "#️⃣",
                                                     "✨",           "🔥",
                                                     "🚀",           "☕",
                                                     "⚠️",      "✅",
                                                     "❌",           "🤖",
                                                     "🎉",           "💯",
                                                     "🫠",        "©️",
                                                     "™",           "☺",
                                                     "♥",           "🦀"};

std::string Emoji(Rng& rng) {
  std::string out;
  const std::size_t items = rng.Between(1, 12);
  for (std::size_t i = 0; i < items; ++i) {
    if (rng.Percent(50)) {
      AppendWords(rng, out, kEnglish, rng.Between(1, 4));
      out += rng.Percent(60) ? " " : "";
    }
    for (std::size_t k = rng.Between(1, 3); k > 0; --k) {
      out += rng.Pick(kEmoji);
    }
    if (rng.Percent(40)) out += " ";
  }
  return out;
}

constexpr std::array<std::string_view, 30> kMarked = {
    "e\u0301",    "a\u0300\u0323", "o\u0308",       "n\u0303", "\u0301",  "\u0301\u0301",
    "A\u030a",    "Z\u0335\u0321", "i\u0307\u0301", "क्ष",      "हिन्दी",   "नमस्ते",
    "किं",         "العَرَبِيَّة",       "مُحَمَّد",          "שָׁלוֹם",    "ภาษาไทย", "กำ",
    "Tiếng Việt", "Tiê\u0301ng",   "ḁ\u0325",       "x\u20dd", "1\u20e3", "\u0e31",
    "ബ്",          "\u0903",        "ಕನ್ನಡ",          "ǅ\u0301", "ʰ\u0301", "q\u0307\u0323"};
constexpr std::array<std::string_view, 8> kMarkNeighbours = {" ",  "!", "'",  "1",
                                                             "中", "A", "\n", "'s"};

std::string CombiningMarks(Rng& rng) {
  std::string out;
  const std::size_t items = rng.Between(1, 12);
  for (std::size_t i = 0; i < items; ++i) {
    if (rng.Percent(30)) out += rng.Pick(kMarkNeighbours);
    out += rng.Pick(kMarked);
    if (rng.Percent(40)) out += rng.Percent(50) ? " " : std::string(rng.Pick(kEnglish));
  }
  return out;
}

constexpr std::array<std::string_view, 44> kScripts = {
    "Ελληνικά", "ΑΘΗΝΑ",    "Привет",   "МОСКВА",
    "мир",      "Հայերեն",  "ქართული",  "ᲥᲐᲠᲗᲣᲚᲘ",
    "مرحبا",    "بالعالم",  "שלום",     "עולם",
    "नमस्ते",     "สวัสดี",     "ǅungla",   "ǈubljana",
    "ǋ",        "ᾈδης",     "ʰello",    "ˈstress",
    "ʲ",        "ꜰᴀᴋᴇ",     "ＦＵＬＬ", "ﬁne",
    "ǲ",        "İstanbul", "ıi",       "ß",
    "ẞ",        "Ω",        "Ꙁ",        "ꓐꓑ",
    "Ⴀ",        "ⰀⰁ",       "𐐀𐐨",       "𝐀𝐁𝐂",
    "𝔄𝔟",       "ᏣᎳᎩ",      "ᎠᏍᎦ",      "ꭰꭱ",
    "Ａｂｃ",   "ǄǅǆǇ",     "ᾼ",        "ͅ"};
constexpr std::array<std::string_view, 14> kCaseMixes = {
    "HELLO",  "Hello",    "hELLO", "HeLLo", "camelCase", "PascalCase", "HTTPServer",
    "iPhone", "McDonald", "DON'T", "He's",  "THEY'LL",   "O'Neil",     "L'Été"};

constexpr std::array<std::string_view, 8> kSuffixes = {"'s", "'LL", "'re", "'d",
                                                       "'m", "'ve", "'t",  "'x"};

std::string MixedScripts(Rng& rng) {
  std::string out;
  const std::size_t items = rng.Between(1, 10);
  for (std::size_t i = 0; i < items; ++i) {
    out += rng.Percent(60) ? rng.Pick(kScripts) : rng.Pick(kCaseMixes);
    if (rng.Percent(25)) out += rng.Pick(kSuffixes);
    if (rng.Percent(70)) out += rng.Percent(80) ? " " : rng.Pick(kInnerPunct);
  }
  return out;
}

// One or two characters of every class and the characters the patterns name.
constexpr std::array<std::string_view, 44> kAlphabet = {
    "a",      "b",      "A", "Z", "ǅ", "ʰ", "中", "ア", "\u0301", "\u0903", "1",
    "9",      "٣",      "½", "Ⅻ", " ", " ", "\t", "\n", "\r",     "\u3000", "\u00a0",
    "\ufeff", "\u0085", "'", "'", "s", "S", "t",  "l",  "L",      "r",      "e",
    "E",      "v",      "d", "m", "/", "!", ".",  "😀",  "\u200d", "\ufe0f", "\u2028"};

std::string Adversarial(Rng& rng) {
  std::string out;
  for (std::size_t n = rng.Between(1, 30); n > 0; --n) {
    out += rng.Pick(kAlphabet);
  }
  return out;
}

constexpr std::array<std::string_view, 12> kRunUnits = {"a",    "ab", "xyz", "aA", "!",       "=-",
                                                        "... ", "中", "ア",  "😀",  "e\u0301", "é"};

std::string LongPieces(Rng& rng) {
  std::string out;
  switch (rng.Below(6)) {
    case 0:  // one long word: random lower-case letters
      for (std::size_t n = rng.Between(65, 700); n > 0; --n) {
        out += static_cast<char>('a' + rng.Below(26));
      }
      break;
    case 1: {  // a repeated unit
      const std::string_view unit = rng.Pick(kRunUnits);
      for (std::size_t n = rng.Between(30, 250); n > 0; --n) {
        out += unit;
      }
      break;
    }
    case 2:  // CJK without punctuation
      for (std::size_t n = rng.Between(25, 250); n > 0; --n) {
        out += rng.Pick(kHanzi);
      }
      break;
    case 3:  // punctuation and symbols
      for (std::size_t n = rng.Between(65, 600); n > 0; --n) {
        out += "!@#$%^&*()_+-=[]{};:,.<>?|~`\"\\"[rng.Below(31)];
      }
      break;
    case 4:  // a long whitespace run, then a word
      for (std::size_t n = rng.Between(65, 400); n > 0; --n) {
        out += rng.Percent(90) ? " " : "\t";
      }
      out += "word";
      break;
    default:  // base64-like blob
      for (std::size_t n = rng.Between(65, 800); n > 0; --n) {
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.Below(64)];
      }
      break;
  }
  if (rng.Percent(30)) out = std::string(rng.Pick(kEnglish)) + " " + out;
  return out;
}

constexpr std::array<std::string_view, 7> kSpecialTexts = {
    "<|endoftext|>",   "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|endofprompt|>", "<|im_start|>",   "<|endoftext"};

std::string SpecialTokenText(Rng& rng) {
  std::string out;
  for (std::size_t n = rng.Between(1, 4); n > 0; --n) {
    if (rng.Percent(50)) AppendWords(rng, out, kEnglish, rng.Between(1, 5));
    if (rng.Percent(50)) out += " ";
    out += rng.Pick(kSpecialTexts);
  }
  return out;
}

std::string AnyCodePoint(Rng& rng) {
  std::string out;
  for (std::size_t n = rng.Between(1, 16); n > 0; --n) {
    char32_t cp;
    do {
      cp = static_cast<char32_t>(rng.Percent(60) ? rng.Below(0x10000) : rng.Below(0x110000));
    } while (cp >= 0xD800 && cp <= 0xDFFF);
    AppendUtf8(out, cp);
    if (rng.Percent(20)) out += rng.Pick(kAlphabet);
  }
  return out;
}

}  // namespace

const char* FamilyName(Family family) {
  switch (family) {
    case Family::kProse:
      return "prose";
    case Family::kCode:
      return "code";
    case Family::kNumbers:
      return "numbers";
    case Family::kWhitespace:
      return "whitespace";
    case Family::kCjk:
      return "cjk";
    case Family::kEmoji:
      return "emoji";
    case Family::kCombiningMarks:
      return "combining marks";
    case Family::kMixedScripts:
      return "mixed scripts";
    case Family::kAdversarial:
      return "adversarial";
    case Family::kLongPieces:
      return "long pieces";
    case Family::kSpecialTokenText:
      return "special-token text";
    case Family::kAnyCodePoint:
      return "any code point";
  }
  return "?";
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<Sample> MakeCorpus() {
  struct Plan {
    Family family;
    std::size_t count;
    std::string (*make)(Rng&);
  };
  constexpr Plan kPlan[] = {
      {Family::kProse, 300, &Prose},
      {Family::kCode, 250, &Code},
      {Family::kNumbers, 250, &Numbers},
      {Family::kWhitespace, 300, &Whitespace},
      {Family::kCjk, 250, &Cjk},
      {Family::kEmoji, 200, &Emoji},
      {Family::kCombiningMarks, 250, &CombiningMarks},
      {Family::kMixedScripts, 250, &MixedScripts},
      {Family::kAdversarial, 800, &Adversarial},
      {Family::kLongPieces, 120, &LongPieces},
      {Family::kSpecialTokenText, 60, &SpecialTokenText},
      {Family::kAnyCodePoint, 200, &AnyCodePoint},
  };
  Rng rng(20240513);
  std::vector<Sample> corpus;
  corpus.push_back({Family::kWhitespace, ""});
  for (const Plan& plan : kPlan) {
    for (std::size_t i = 0; i < plan.count; ++i) {
      corpus.push_back({plan.family, plan.make(rng)});
    }
  }
  return corpus;
}

}  // namespace orchestra::tokens::testing
