/* featuresql docs: a small, safe Markdown renderer for descriptions and docs blocks.
 * Everything is HTML-escaped first; then paragraphs, headings, lists, fenced code,
 * `code`, **bold**, *emphasis* and [links](https://...) (http, https, mailto, # and relative only). */
"use strict";
window.FSQL = window.FSQL || {};

(function (F) {
  const SAFE_URL = /^(https?:\/\/|mailto:|#|\.{0,2}\/|[\w-]+\.html)/i;

  function inline(text) {
    return text.split(/(`[^`]*`)/).map((part) => {
      if (part.length > 1 && part.startsWith("`") && part.endsWith("`")) {
        return `<code>${F.escape(part.slice(1, -1))}</code>`;
      }
      // Links are cut out first, so emphasis never reaches inside a URL.
      const html = F.escape(part), pieces = [];
      let last = 0;
      for (const link of html.matchAll(/\[([^\]]+)\]\(([^)\s]+)\)/g)) {
        pieces.push(emphasis(html.slice(last, link.index)));
        const target = link[2].replace(/&amp;/g, "&");
        pieces.push(SAFE_URL.test(target) ? `<a href="${F.escape(target)}">${emphasis(link[1])}</a>` : emphasis(link[0]));
        last = link.index + link[0].length;
      }
      pieces.push(emphasis(html.slice(last)));
      return pieces.join("");
    }).join("");
  }

  function emphasis(html) {
    return html
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^\w*])\*([^*\s][^*]*)\*(?!\w)/g, "$1<em>$2</em>")
      .replace(/(^|\W)_([^_\s][^_]*)_(?!\w)/g, "$1<em>$2</em>");
  }

  F.markdown = function (source) {
    const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
    const out = [];
    let paragraph = [], list = null, code = null;
    const flushParagraph = () => {
      if (paragraph.length) out.push(`<p>${inline(paragraph.join(" "))}</p>`);
      paragraph = [];
    };
    const flushList = () => {
      if (list) out.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join("")}</${list.tag}>`);
      list = null;
    };
    for (const line of lines) {
      if (code !== null) {
        if (/^\s*```/.test(line)) { out.push(`<pre><code>${F.escape(code.join("\n"))}</code></pre>`); code = null; }
        else code.push(line);
        continue;
      }
      if (/^\s*```/.test(line)) { flushParagraph(); flushList(); code = []; continue; }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph(); flushList();
        const level = Math.min(heading[1].length + 2, 6);
        out.push(`<h${level}>${inline(heading[2])}</h${level}>`);
      } else if (bullet || numbered) {
        flushParagraph();
        const tag = bullet ? "ul" : "ol";
        if (list && list.tag !== tag) flushList();
        list = list || { tag, items: [] };
        list.items.push((bullet || numbered)[1]);
      } else if (!line.trim()) {
        flushParagraph(); flushList();
      } else if (list && /^\s+\S/.test(line)) {
        list.items[list.items.length - 1] += " " + line.trim();
      } else {
        flushList();
        paragraph.push(line.trim());
      }
    }
    if (code !== null) out.push(`<pre><code>${F.escape(code.join("\n"))}</code></pre>`);
    flushParagraph(); flushList();
    return out.join("\n");
  };
})(window.FSQL);
