#pragma once

#include <string>
#include <string_view>

// HTML reduced to its readable text, for indexing uploaded pages. Not a browser: no DOM, no
// tree, one forward pass over the bytes with a few counters, so any input (unclosed tags,
// unclosed comments, a million nested <div>s, ten megabytes of '<') costs linear time and no
// more memory than its output.
//
//   dropped      <script>, <style>, <template>, <iframe>, <noembed>, <noframes>, <svg> with their
//                content; the <head> (up to </head>, <body> or the first tag or text that
//                belongs to the body); comments, <!DOCTYPE>, <?…?>; every tag itself. A tag
//                that never closes drops the rest of the input, as in a browser.
//   line breaks  block elements end a line (<br>, <li>, <tr>, <div>, <dt>, …); paragraph-like
//                ones (<p>, <h1>–<h6>, <blockquote>, <pre>, <table>, <ul>, …) leave a blank line,
//                so the paragraph chunker sees their paragraphs; table cells are separated by a
//                tab.
//   whitespace   runs collapse to one space, except inside <pre>, <textarea> and <listing>;
//                lines are trimmed, at most one blank line in a row, none at either end.
//   entities     the HTML 4 named entities (all 252: &amp; &nbsp; &eacute; &rarr; &hellip; …) and
//                &apos;, with their semicolon; numeric ones (&#233; &#xE9;, semicolon optional),
//                with the HTML rules for 0, surrogates, values past U+10FFFF (U+FFFD) and
//                128–159 (the windows-1252 characters). Anything else is left as text ("AT&T",
//                "&bogus;", "&#xZZ;").
//
// The result is valid UTF-8 whatever the input: malformed bytes become U+FFFD, and control
// characters other than tab and newline are dropped.
namespace orchestra::documents {

// The text of `html`; `title`, when given, receives the first <title>'s text (whitespace
// collapsed, at most 1,024 bytes; empty when there is none).
std::string HtmlToText(std::string_view html, std::string* title = nullptr);

}  // namespace orchestra::documents
