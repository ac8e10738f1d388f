#include "documents/html.hpp"

#include <string>

#include <gtest/gtest.h>

#include "common/utf8.hpp"

namespace orchestra::documents {
namespace {

struct Case {
  const char* name;
  std::string html;
  std::string text;
};

TEST(HtmlToText, Table) {
  const Case cases[] = {
      {"plain text", "hello world", "hello world"},
      {"tags removed", "<b>bold</b> and <i>italic</i>", "bold and italic"},
      {"whitespace collapses", "a \n\t  b\r\n c", "a b c"},
      {"paragraphs leave a blank line", "<p>one</p><p>two</p>", "one\n\ntwo"},
      {"br and li end lines", "a<br>b<br/>c<ul><li>x</li><li>y</li></ul>d", "a\nb\nc\n\nx\ny\n\nd"},
      {"div ends a line", "<div>a</div><div>b</div>", "a\nb"},
      {"headings", "<h1>Title</h1>text", "Title\n\ntext"},
      {"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>",
       "a\tb\nc\td"},
      {"script dropped", "a<script>var x = '</p>'; if (a < b) {}</script>b", "ab"},
      {"script end tag in any case", "a<SCRIPT type=x>x</ScRiPt >b", "ab"},
      {"script end needs a delimiter", "a<script>x</scripts>y</script>b", "ab"},
      {"style dropped", "<style>p { color: red }</style>text", "text"},
      {"comments dropped", "a<!-- <p>hidden</p> -->b<!---->c<!-->d", "abcd"},
      {"doctype and pi dropped", "<!DOCTYPE html><?xml version=\"1.0\"?>x", "x"},
      {"head dropped, title kept aside",
       "<html><head><title>T</title><meta charset=utf-8><link rel=x></head><body>B</body></html>",
       "B"},
      {"text ends an implied head", "<head><meta x=1>visible", "visible"},
      {"body tag ends the head", "<head><body>x", "x"},
      {"attributes with > in quotes", "<a title=\"a > b\" href='x>y'>link</a>", "link"},
      {"unquoted attributes", "<img src=x.png alt=hi>after", "after"},
      {"named entities", "&lt;p&gt; &amp; &quot;q&quot; &apos;s&apos; caf&eacute; &euro;5 &hellip;",
       "<p> & \"q\" 's' caf\xC3\xA9 \xE2\x82\xAC"
       "5 \xE2\x80\xA6"},
      {"nbsp is a space", "a&nbsp;&nbsp;b", "a b"},
      {"numeric entities", "&#65;&#x42;&#X43;&#233;&#x1F600;", "ABC\xC3\xA9\xF0\x9F\x98\x80"},
      {"numeric without semicolon", "&#65 x", "A x"},
      {"windows-1252 references", "&#150;&#147;q&#148;", "\xE2\x80\x93\xE2\x80\x9Cq\xE2\x80\x9D"},
      {"invalid references become U+FFFD", "&#0;&#xD800;&#x110000;&#99999999999;",
       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"unknown entities stay text", "AT&T &bogus; &amp &#xZZ; & ;",
       "AT&T &bogus; &amp &#xZZ; & ;"},
      {"entity names are case-sensitive", "&Eacute;&EACUTE;", "\xC3\x89&EACUTE;"},
      {"lone < is text", "a < b <= c <<>> 1<2", "a < b <= c <<>> 1<2"},
      {"empty end tag", "a</>b", "ab"},
      {"bogus end tag", "a</ x>b", "ab"},
      {"unclosed tag drops the rest", "visible <a href=\"x", "visible"},
      {"unclosed comment drops the rest", "visible <!-- never closed <p>x</p>", "visible"},
      {"unclosed script drops the rest", "visible<script>never closed", "visible"},
      {"pre keeps whitespace", "<p>x</p><pre>\n  a  b\n    c\n</pre>y", "x\n\n  a  b\n    c\n\ny"},
      {"control characters dropped",
       "a\x01"
       "b\x7F"
       "c\xC2\x85"
       "d",
       "abcd"},
      {"byte-order mark dropped", "\xEF\xBB\xBFtext", "text"},
      {"malformed UTF-8 replaced",
       "a\xFF"
       "b\xC3",
       "a\xEF\xBF\xBD"
       "b\xEF\xBF\xBD"},
      {"at most one blank line", "<p><p><p>a</p></p></p><br><br><br><p>b", "a\n\nb"},
      {"svg and template dropped", "<svg><text>chart</text></svg><template>t</template>ok", "ok"},
      {"textarea is preformatted", "<textarea>a  b</textarea>", "a  b"},
      {"long unknown tag name",
       "<averyveryverylongtagnamethatisnotknown>x</averyveryverylongtagnamethatisnotknown>y", "xy"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(HtmlToText(c.html), c.text) << c.name;
}

TEST(HtmlToText, TitleIsReportedSeparately) {
  std::string title;
  EXPECT_EQ(HtmlToText("<title> The &amp;\n Title </title><p>body</p>", &title), "body");
  EXPECT_EQ(title, "The & Title");
  EXPECT_EQ(HtmlToText("<p>no title</p>", &title), "no title");
  EXPECT_EQ(title, "");
  HtmlToText("<title>" + std::string(5000, 'x') + "</title>", &title);
  EXPECT_EQ(title.size(), 1024u);
}

// Hostile inputs: each finishes in linear time (a quadratic path would take hours on these
// sizes and run into the test's timeout) and gives valid UTF-8.
TEST(HtmlToText, HostileInputsAreLinearAndSafe) {
  const std::size_t big = 10 << 20;
  std::string nested;
  while (nested.size() < big)
    nested += "<div><pre><p>";
  std::string unclosed_attrs;
  while (unclosed_attrs.size() < big)
    unclosed_attrs += "<a b=\"";
  std::string tags_no_end;
  while (tags_no_end.size() < big)
    tags_no_end += "<a";
  std::string entities;
  while (entities.size() < big)
    entities += "&#x&&amp;&thetasym";
  std::string end_tags;
  while (end_tags.size() < big)
    end_tags += "</scrip";
  std::string script_like;
  script_like = "<script>";
  while (script_like.size() < big)
    script_like += "</scrip</scriptx";
  std::string comments;
  while (comments.size() < big)
    comments += "<!-- -- -";
  std::string random_bytes(big, '\0');
  std::uint64_t x = 88172645463325252ull;
  for (char& c : random_bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  const std::string inputs[] = {
      std::string(big, '<'), nested,   unclosed_attrs, tags_no_end,          entities, end_tags,
      script_like,           comments, random_bytes,   std::string(big, '&')};
  for (const std::string& html : inputs) {
    const std::string text = HtmlToText(html);
    EXPECT_TRUE(utf8::IsValid(text));
    EXPECT_LE(text.size(), html.size() * 3);  // U+FFFD is 3 bytes for a malformed 1
  }
  EXPECT_EQ(HtmlToText(std::string(1000, '<')), std::string(1000, '<'));
  EXPECT_TRUE(HtmlToText(nested).empty());
}

}  // namespace
}  // namespace orchestra::documents
