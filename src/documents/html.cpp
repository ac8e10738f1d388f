#include "documents/html.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "common/utf8.hpp"

namespace orchestra::documents {
namespace {

struct Entity {
  std::string_view name;
  char32_t cp;
};

// HTML 4.01's 252 character entities (Latin-1, symbols and Greek, special), and &apos;.
// &lang; and &rang; take their HTML5 code points, as browsers do.
constexpr Entity kEntities[] = {
    {"quot", 34},     {"amp", 38},      {"apos", 39},      {"lt", 60},        {"gt", 62},
    {"nbsp", 160},    {"iexcl", 161},   {"cent", 162},     {"pound", 163},    {"curren", 164},
    {"yen", 165},     {"brvbar", 166},  {"sect", 167},     {"uml", 168},      {"copy", 169},
    {"ordf", 170},    {"laquo", 171},   {"not", 172},      {"shy", 173},      {"reg", 174},
    {"macr", 175},    {"deg", 176},     {"plusmn", 177},   {"sup2", 178},     {"sup3", 179},
    {"acute", 180},   {"micro", 181},   {"para", 182},     {"middot", 183},   {"cedil", 184},
    {"sup1", 185},    {"ordm", 186},    {"raquo", 187},    {"frac14", 188},   {"frac12", 189},
    {"frac34", 190},  {"iquest", 191},  {"Agrave", 192},   {"Aacute", 193},   {"Acirc", 194},
    {"Atilde", 195},  {"Auml", 196},    {"Aring", 197},    {"AElig", 198},    {"Ccedil", 199},
    {"Egrave", 200},  {"Eacute", 201},  {"Ecirc", 202},    {"Euml", 203},     {"Igrave", 204},
    {"Iacute", 205},  {"Icirc", 206},   {"Iuml", 207},     {"ETH", 208},      {"Ntilde", 209},
    {"Ograve", 210},  {"Oacute", 211},  {"Ocirc", 212},    {"Otilde", 213},   {"Ouml", 214},
    {"times", 215},   {"Oslash", 216},  {"Ugrave", 217},   {"Uacute", 218},   {"Ucirc", 219},
    {"Uuml", 220},    {"Yacute", 221},  {"THORN", 222},    {"szlig", 223},    {"agrave", 224},
    {"aacute", 225},  {"acirc", 226},   {"atilde", 227},   {"auml", 228},     {"aring", 229},
    {"aelig", 230},   {"ccedil", 231},  {"egrave", 232},   {"eacute", 233},   {"ecirc", 234},
    {"euml", 235},    {"igrave", 236},  {"iacute", 237},   {"icirc", 238},    {"iuml", 239},
    {"eth", 240},     {"ntilde", 241},  {"ograve", 242},   {"oacute", 243},   {"ocirc", 244},
    {"otilde", 245},  {"ouml", 246},    {"divide", 247},   {"oslash", 248},   {"ugrave", 249},
    {"uacute", 250},  {"ucirc", 251},   {"uuml", 252},     {"yacute", 253},   {"thorn", 254},
    {"yuml", 255},    {"OElig", 338},   {"oelig", 339},    {"Scaron", 352},   {"scaron", 353},
    {"Yuml", 376},    {"fnof", 402},    {"circ", 710},     {"tilde", 732},    {"Alpha", 913},
    {"Beta", 914},    {"Gamma", 915},   {"Delta", 916},    {"Epsilon", 917},  {"Zeta", 918},
    {"Eta", 919},     {"Theta", 920},   {"Iota", 921},     {"Kappa", 922},    {"Lambda", 923},
    {"Mu", 924},      {"Nu", 925},      {"Xi", 926},       {"Omicron", 927},  {"Pi", 928},
    {"Rho", 929},     {"Sigma", 931},   {"Tau", 932},      {"Upsilon", 933},  {"Phi", 934},
    {"Chi", 935},     {"Psi", 936},     {"Omega", 937},    {"alpha", 945},    {"beta", 946},
    {"gamma", 947},   {"delta", 948},   {"epsilon", 949},  {"zeta", 950},     {"eta", 951},
    {"theta", 952},   {"iota", 953},    {"kappa", 954},    {"lambda", 955},   {"mu", 956},
    {"nu", 957},      {"xi", 958},      {"omicron", 959},  {"pi", 960},       {"rho", 961},
    {"sigmaf", 962},  {"sigma", 963},   {"tau", 964},      {"upsilon", 965},  {"phi", 966},
    {"chi", 967},     {"psi", 968},     {"omega", 969},    {"thetasym", 977}, {"upsih", 978},
    {"piv", 982},     {"ensp", 8194},   {"emsp", 8195},    {"thinsp", 8201},  {"zwnj", 8204},
    {"zwj", 8205},    {"lrm", 8206},    {"rlm", 8207},     {"ndash", 8211},   {"mdash", 8212},
    {"lsquo", 8216},  {"rsquo", 8217},  {"sbquo", 8218},   {"ldquo", 8220},   {"rdquo", 8221},
    {"bdquo", 8222},  {"dagger", 8224}, {"Dagger", 8225},  {"bull", 8226},    {"hellip", 8230},
    {"permil", 8240}, {"prime", 8242},  {"Prime", 8243},   {"lsaquo", 8249},  {"rsaquo", 8250},
    {"oline", 8254},  {"frasl", 8260},  {"euro", 8364},    {"image", 8465},   {"weierp", 8472},
    {"real", 8476},   {"trade", 8482},  {"alefsym", 8501}, {"larr", 8592},    {"uarr", 8593},
    {"rarr", 8594},   {"darr", 8595},   {"harr", 8596},    {"crarr", 8629},   {"lArr", 8656},
    {"uArr", 8657},   {"rArr", 8658},   {"dArr", 8659},    {"hArr", 8660},    {"forall", 8704},
    {"part", 8706},   {"exist", 8707},  {"empty", 8709},   {"nabla", 8711},   {"isin", 8712},
    {"notin", 8713},  {"ni", 8715},     {"prod", 8719},    {"sum", 8721},     {"minus", 8722},
    {"lowast", 8727}, {"radic", 8730},  {"prop", 8733},    {"infin", 8734},   {"ang", 8736},
    {"and", 8743},    {"or", 8744},     {"cap", 8745},     {"cup", 8746},     {"int", 8747},
    {"there4", 8756}, {"sim", 8764},    {"cong", 8773},    {"asymp", 8776},   {"ne", 8800},
    {"equiv", 8801},  {"le", 8804},     {"ge", 8805},      {"sub", 8834},     {"sup", 8835},
    {"nsub", 8836},   {"sube", 8838},   {"supe", 8839},    {"oplus", 8853},   {"otimes", 8855},
    {"perp", 8869},   {"sdot", 8901},   {"lceil", 8968},   {"rceil", 8969},   {"lfloor", 8970},
    {"rfloor", 8971}, {"lang", 10216},  {"rang", 10217},   {"loz", 9674},     {"spades", 9824},
    {"clubs", 9827},  {"hearts", 9829}, {"diams", 9830},
};
static_assert(std::size(kEntities) == 253);

// What &#128; … &#159; mean (HTML's numeric character reference rules): windows-1252. The
// five unassigned ones stay as they are (C1 controls, dropped from the output).
constexpr char32_t kWindows1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

constexpr std::size_t kMaxEntityName = 8;  // the longest above: "thetasym"
constexpr std::size_t kMaxTitleBytes = 1024;

char32_t LookupEntity(std::string_view name) {
  static const std::vector<Entity> sorted = [] {
    std::vector<Entity> v(std::begin(kEntities), std::end(kEntities));
    std::sort(v.begin(), v.end(), [](const Entity& a, const Entity& b) { return a.name < b.name; });
    return v;
  }();
  auto it = std::lower_bound(sorted.begin(), sorted.end(), name,
                             [](const Entity& e, std::string_view n) { return e.name < n; });
  return it != sorted.end() && it->name == name ? it->cp : 0;
}

bool IsAsciiAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAsciiAlnum(char c) {
  return IsAsciiAlpha(c) || (c >= '0' && c <= '9');
}
bool IsHtmlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Decodes the character reference at text[pos] == '&'; returns its length and sets cp, or
// returns 0 when it is not one (the '&' is then text).
std::size_t CharacterReference(std::string_view text, std::size_t pos, char32_t& cp) {
  std::size_t i = pos + 1;
  if (i < text.size() && text[i] == '#') {
    ++i;
    const bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
    if (hex) ++i;
    const std::size_t digits_begin = i;
    std::uint32_t value = 0;
    for (; i < text.size(); ++i) {
      const char c = text[i];
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (hex && c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (hex && c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        break;
      }
      // Saturate past the Unicode range instead of overflowing (&#99999999999999;).
      value = std::min<std::uint32_t>(value * (hex ? 16 : 10) + digit, 0x110000);
    }
    if (i == digits_begin) return 0;
    if (i < text.size() && text[i] == ';') ++i;
    if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
      cp = utf8::kReplacement;
    } else if (value >= 0x80 && value <= 0x9F) {
      cp = kWindows1252[value - 0x80];
    } else {
      cp = value;
    }
    return i - pos;
  }
  const std::size_t name_begin = i;
  while (i < text.size() && i - name_begin <= kMaxEntityName && IsAsciiAlnum(text[i]))
    ++i;
  if (i == name_begin || i >= text.size() || text[i] != ';') return 0;
  cp = LookupEntity(text.substr(name_begin, i - name_begin));
  return cp == 0 ? 0 : i + 1 - pos;
}

enum class Break : std::uint8_t { kNone, kCell, kLine, kParagraph };

// How a tag affects the text layout.
Break BreakOf(std::string_view tag) {
  static constexpr std::string_view kParagraphs[] = {
      "address", "article", "aside",   "blockquote", "details", "dialog",  "dl",      "fieldset",
      "figure",  "footer",  "form",    "h1",         "h2",      "h3",      "h4",      "h5",
      "h6",      "header",  "hgroup",  "hr",         "main",    "menu",    "nav",     "ol",
      "p",       "pre",     "section", "table",      "ul",      "listing", "textarea"};
  static constexpr std::string_view kLines[] = {
      "br",   "caption", "dd",      "div",      "dt",    "figcaption", "legend",
      "li",   "option",  "summary", "tbody",    "tfoot", "thead",      "tr",
      "body", "html",    "center",  "noscript", "label"};
  for (std::string_view t : kParagraphs)
    if (t == tag) return Break::kParagraph;
  for (std::string_view t : kLines)
    if (t == tag) return Break::kLine;
  if (tag == "td" || tag == "th") return Break::kCell;
  return Break::kNone;
}

// Elements whose content is dropped whole: the parser skips to their end tag.
bool DropsContent(std::string_view tag) {
  static constexpr std::string_view kDropped[] = {"script",  "style",    "template", "iframe",
                                                  "noembed", "noframes", "svg",      "math",
                                                  "xmp",     "plaintext"};
  for (std::string_view t : kDropped)
    if (t == tag) return true;
  return false;
}

bool Preformatted(std::string_view tag) {
  return tag == "pre" || tag == "textarea" || tag == "listing";
}

// Tags that may appear in the <head> without ending it.
bool BelongsInHead(std::string_view tag) {
  static constexpr std::string_view kHead[] = {"title",    "meta",    "link",     "base",
                                               "style",    "script",  "noscript", "template",
                                               "basefont", "bgsound", "head",     "html"};
  for (std::string_view t : kHead)
    if (t == tag) return true;
  return false;
}

class Converter {
 public:
  explicit Converter(std::string_view html) : html_(html) { out_.reserve(html.size() / 2); }

  std::string Run(std::string* title) {
    std::size_t pos = 0;
    while (pos < html_.size()) {
      const std::size_t lt = html_.find('<', pos);
      const std::size_t text_end = lt == std::string_view::npos ? html_.size() : lt;
      if (text_end > pos) Text(html_.substr(pos, text_end - pos));
      if (lt == std::string_view::npos) break;
      pos = Markup(lt);
    }
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\n' || out_.back() == '\t'))
      out_.pop_back();
    std::size_t lead = 0;  // preformatted text may have started with blank lines
    while (lead < out_.size() && (out_[lead] == ' ' || out_[lead] == '\n' || out_[lead] == '\t'))
      ++lead;
    out_.erase(0, lead);
    if (title != nullptr) *title = std::move(title_);
    return std::move(out_);
  }

 private:
  // The markup starting at html_[lt] == '<'; returns where to go on.
  std::size_t Markup(std::size_t lt) {
    const std::size_t n = html_.size();
    if (lt + 1 >= n) {
      Text("<");
      return n;
    }
    const char c = html_[lt + 1];
    if (c == '!') {
      if (html_.substr(lt, 4) == "<!--") {
        // "<!-->" and "<!--->" are complete (empty) comments in HTML.
        if (html_.substr(lt + 4, 1) == ">") return lt + 5;
        if (html_.substr(lt + 4, 2) == "->") return lt + 6;
        const std::size_t close = html_.find("-->", lt + 4);
        return close == std::string_view::npos ? n : close + 3;
      }
      return SkipPast('>', lt + 2);  // <!DOCTYPE …>, <![CDATA[…]]>: bogus comments
    }
    if (c == '?') return SkipPast('>', lt + 2);
    if (c == '/') {
      std::size_t i = lt + 2;
      if (i < n && html_[i] == '>') return i + 1;                      // "</>" is nothing
      if (i >= n || !IsAsciiAlpha(html_[i])) return SkipPast('>', i);  // a bogus comment
      const std::string_view tag = TagName(i);
      const std::size_t after = SkipAttributes(i);
      if (after == std::string_view::npos) return n;  // never closed: dropped
      EndTag(tag);
      return after;
    }
    if (!IsAsciiAlpha(c)) {
      Text("<");  // "a < b", "<<<": text
      return lt + 1;
    }
    std::size_t i = lt + 1;
    const std::string_view tag = TagName(i);
    const std::size_t after = SkipAttributes(i);
    if (after == std::string_view::npos) return n;  // never closed: dropped, as in a browser
    return StartTag(tag, after);
  }

  // Reads a tag name at html_[i] (a letter), lower-cased into name_buffer_ (cut at 16
  // characters: no tag we act on is longer); leaves i after it.
  std::string_view TagName(std::size_t& i) {
    std::size_t len = 0;
    while (i < html_.size() && !IsHtmlSpace(html_[i]) && html_[i] != '/' && html_[i] != '>') {
      if (len < name_buffer_.size()) name_buffer_[len] = Lower(html_[i]);
      ++len;
      ++i;
    }
    return len > name_buffer_.size() ? std::string_view("-")
                                     : std::string_view(name_buffer_.data(), len);
  }

  // Skips the attributes from i to just past the tag's '>' (quotes in values respected); npos
  // when the tag never closes.
  std::size_t SkipAttributes(std::size_t i) const {
    const std::size_t n = html_.size();
    while (i < n) {
      const char c = html_[i];
      if (c == '>') return i + 1;
      if (c == '=') {
        ++i;
        while (i < n && IsHtmlSpace(html_[i]))
          ++i;
        if (i < n && (html_[i] == '"' || html_[i] == '\'')) {
          const std::size_t close = html_.find(html_[i], i + 1);
          if (close == std::string_view::npos) return std::string_view::npos;
          i = close + 1;
        }
        continue;
      }
      ++i;
    }
    return std::string_view::npos;
  }

  std::size_t SkipPast(char c, std::size_t from) const {
    const std::size_t at = html_.find(c, from);
    return at == std::string_view::npos ? html_.size() : at + 1;
  }

  // Finds the end tag "</tag" (any case, followed by a space, '/' or '>') from `from`; returns
  // where it starts, or npos.
  std::size_t FindEndTag(std::string_view tag, std::size_t from) const {
    const std::size_t n = html_.size();
    for (std::size_t at = html_.find("</", from); at != std::string_view::npos;
         at = html_.find("</", at + 2)) {
      std::size_t i = at + 2;
      std::size_t k = 0;
      while (k < tag.size() && i < n && Lower(html_[i]) == tag[k]) {
        ++i;
        ++k;
      }
      if (k == tag.size() &&
          (i == n || IsHtmlSpace(html_[i]) || html_[i] == '/' || html_[i] == '>'))
        return at;
    }
    return std::string_view::npos;
  }

  std::size_t StartTag(std::string_view tag, std::size_t after) {
    if (in_head_ && !BelongsInHead(tag)) in_head_ = false;
    if (tag == "head") {
      if (!body_started_) in_head_ = true;
      return after;
    }
    if (tag == "title") {
      // Its text (raw: no tags inside) is the page's title, never body text.
      const std::size_t end = FindEndTag("title", after);
      const std::size_t stop = end == std::string_view::npos ? html_.size() : end;
      if (!title_seen_) {
        title_seen_ = true;
        Title(html_.substr(after, stop - after));
      }
      return end == std::string_view::npos ? html_.size() : SkipPast('>', end);
    }
    if (DropsContent(tag)) {
      const std::size_t end = FindEndTag(tag, after);
      return end == std::string_view::npos ? html_.size() : SkipPast('>', end);
    }
    if (tag == "body") {
      in_head_ = false;
      body_started_ = true;
    }
    Layout(BreakOf(tag), true);
    if (Preformatted(tag)) {
      ++pre_depth_;
      // A newline right after <pre> is not content.
      if (after < html_.size() && html_[after] == '\n') return after + 1;
      if (html_.substr(after, 2) == "\r\n") return after + 2;
    }
    return after;
  }

  void EndTag(std::string_view tag) {
    if (tag == "head") {
      in_head_ = false;
      return;
    }
    if (Preformatted(tag) && pre_depth_ > 0) --pre_depth_;
    Layout(BreakOf(tag), false);
  }

  void Layout(Break b, bool start) {
    switch (b) {
      case Break::kNone:
        break;
      case Break::kCell:
        if (start) pending_cell_ = true;
        break;
      case Break::kLine:
        pending_breaks_ = std::max(pending_breaks_, 1);
        break;
      case Break::kParagraph:
        pending_breaks_ = 2;
        break;
    }
  }

  // Decoded code points of a text run: character references and UTF-8.
  template <class Sink>
  void Decode(std::string_view text, Sink&& sink) {
    for (std::size_t i = 0; i < text.size();) {
      char32_t cp;
      std::size_t len;
      if (text[i] == '&' && (len = CharacterReference(text, i, cp)) > 0) {
        sink(cp);
        i += len;
        continue;
      }
      cp = utf8::Decode(text, i, len);
      sink(cp);
      i += len;
    }
  }

  static bool IsSpaceCp(char32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == 0xA0;
  }
  static bool IsDropped(char32_t cp) {
    return (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp <= 0x9F) ||
           cp == 0xFEFF;  // a byte-order mark
  }

  void Text(std::string_view text) {
    if (in_head_) {
      // Text in the head ends it (and is body text), unless it is whitespace.
      bool blank = true;
      for (char c : text)
        blank = blank && IsHtmlSpace(c);
      if (blank) return;
      in_head_ = false;
    }
    Decode(text, [this](char32_t cp) {
      if (pre_depth_ > 0 && IsSpaceCp(cp)) {
        // Preformatted: whitespace as written (CR LF as LF).
        if (cp == '\r') return;
        Flush();
        out_.push_back(cp == '\n' || cp == '\t' ? static_cast<char>(cp) : ' ');
        return;
      }
      if (IsSpaceCp(cp)) {
        pending_space_ = true;
        return;
      }
      if (IsDropped(cp)) return;
      Flush();
      utf8::Append(out_, cp);
    });
  }

  // Writes what layout is pending before the next visible character.
  void Flush() {
    if (!out_.empty()) {
      if (pending_breaks_ > 0) {
        while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\t'))
          out_.pop_back();
        std::size_t have = 0;  // newlines already ending the output
        while (have < out_.size() && out_[out_.size() - 1 - have] == '\n')
          ++have;
        for (int k = static_cast<int>(have); k < pending_breaks_; ++k)
          out_.push_back('\n');
      } else if (pending_cell_ && out_.back() != '\n') {
        out_.push_back('\t');
      } else if (pending_space_ && out_.back() != '\n' && out_.back() != ' ' &&
                 out_.back() != '\t') {
        out_.push_back(' ');
      }
    }
    pending_breaks_ = 0;
    pending_cell_ = false;
    pending_space_ = false;
  }

  void Title(std::string_view raw) {
    bool space = false;
    Decode(raw, [&](char32_t cp) {
      if (title_.size() >= kMaxTitleBytes) return;
      if (IsSpaceCp(cp)) {
        space = !title_.empty();
        return;
      }
      if (IsDropped(cp)) return;
      if (space) title_.push_back(' ');
      space = false;
      utf8::Append(title_, cp);
    });
    if (title_.size() > kMaxTitleBytes) title_.resize(utf8::FloorBoundary(title_, kMaxTitleBytes));
  }

  std::string_view html_;
  std::string out_;
  std::string title_;
  std::array<char, 16> name_buffer_{};
  int pending_breaks_ = 0;  // newlines owed before the next character (at most 2)
  bool pending_cell_ = false;
  bool pending_space_ = false;
  int pre_depth_ = 0;
  bool in_head_ = false;
  bool body_started_ = false;
  bool title_seen_ = false;
};

}  // namespace

std::string HtmlToText(std::string_view html, std::string* title) {
  return Converter(html).Run(title);
}

}  // namespace orchestra::documents
