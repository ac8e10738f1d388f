#include "documents/content.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/text.hpp"
#include "common/utf8.hpp"
#include "documents/html.hpp"

namespace orchestra::documents {
namespace {

// The extension of a file name, lower-cased, without the dot ("" when none).
std::string Extension(std::string_view filename) {
  const auto slash = filename.find_last_of("/\\");
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  const auto dot = filename.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return AsciiLower(filename.substr(dot + 1));
}

std::optional<ContentType> ByExtension(std::string_view ext) {
  static constexpr std::array<std::pair<std::string_view, ContentType>, 13> kExtensions{{
      {"txt", ContentType::kText},
      {"text", ContentType::kText},
      {"csv", ContentType::kText},
      {"log", ContentType::kText},
      {"rst", ContentType::kText},
      {"json", ContentType::kText},
      {"yaml", ContentType::kText},
      {"yml", ContentType::kText},
      {"xml", ContentType::kText},
      {"md", ContentType::kMarkdown},
      {"markdown", ContentType::kMarkdown},
      {"html", ContentType::kHtml},
      {"htm", ContentType::kHtml},
  }};
  for (const auto& [name, type] : kExtensions)
    if (name == ext) return type;
  return std::nullopt;
}

Error Unsupported(std::string_view what) {
  std::string message = "unsupported media type " + std::string(what) + ": Orchestra reads " +
                        std::string(kSupportedMediaTypes) + " documents (UTF-8)";
  if (what.find("pdf") != std::string_view::npos) message += "; PDF is not supported";
  return Error(ErrorCode::kUnsupportedMediaType, std::move(message), "file");
}

}  // namespace

std::optional<ContentType> ParseContentType(std::string_view name) {
  const std::string n = AsciiLower(name);
  if (n == "text" || n == "plain" || n == "txt" || n == "text/plain") return ContentType::kText;
  if (n == "markdown" || n == "md" || n == "text/markdown") return ContentType::kMarkdown;
  if (n == "html" || n == "htm" || n == "text/html") return ContentType::kHtml;
  return std::nullopt;
}

std::string_view ToString(ContentType type) {
  switch (type) {
    case ContentType::kText:
      return "text";
    case ContentType::kMarkdown:
      return "markdown";
    case ContentType::kHtml:
      return "html";
  }
  return "text";
}

Result<ContentType> ContentTypeOf(std::string_view media_type, std::string_view filename) {
  std::string media = AsciiLower(TrimOws(media_type.substr(0, media_type.find(';'))));
  const std::string ext = Extension(filename);
  const auto by_ext = ByExtension(ext);
  if (media == "text/markdown" || media == "text/x-markdown") return ContentType::kMarkdown;
  if (media == "text/html" || media == "application/xhtml+xml") return ContentType::kHtml;
  if (media == "text/plain") {
    if (by_ext == ContentType::kMarkdown || by_ext == ContentType::kHtml) return *by_ext;
    return ContentType::kText;
  }
  if (media.empty() || media == "application/octet-stream") {
    if (by_ext) return *by_ext;
    return Unsupported(ext.empty() ? std::string("(a file without an extension)")
                                   : "'." + ext + "' (" + std::string(filename) + ")");
  }
  return Unsupported("'" + media + "'");
}

Result<std::string> ToText(std::string_view content, ContentType type, std::string* title,
                           std::string_view param) {
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  if (!utf8::IsValid(content)) {
    return Error(ErrorCode::kUnsupportedMediaType,
                 "the document is not UTF-8 text: Orchestra reads " +
                     std::string(kSupportedMediaTypes) + " documents (UTF-8)",
                 std::string(param));
  }
  if (type == ContentType::kHtml) return HtmlToText(content, title);
  return std::string(content);
}

}  // namespace orchestra::documents
