// Code highlighting: a small tokenizer per language family (comments, strings, numbers,
// keywords, literals, types, calls). It returns Text nodes and <span class="tok-..."> elements
// whose text is set with textContent, so highlighted code is as safe as plain text.

import { h } from "./dom.js";

const words = (list) => new Set(list.split(/\s+/));
const HASH_COMMENT = /#[^\n]*/y;
const SLASH_COMMENTS = [/\/\/[^\n]*/y, /\/\*[\s\S]*?(?:\*\/|$)/y];
const QUOTED = [/"(?:\\[\s\S]|[^"\\\n])*"?/y, /'(?:\\[\s\S]|[^'\\\n])*'?/y];
const NUMBER = /(?:0[xob][\da-fA-F_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)[a-zA-Z]*/y;
const WORD = /[A-Za-z_$][\w$]*/y;

const C_KEYWORDS = "if else for while do switch case default break continue return goto " +
  "struct union enum typedef static const extern sizeof void int char long short unsigned " +
  "signed float double bool inline volatile register auto namespace class public private " +
  "protected virtual template typename using new delete this try catch throw operator";

const LANGUAGES = {
  python: {
    comments: [HASH_COMMENT],
    strings: [/[rbfuRBFU]{0,2}("""|''')[\s\S]*?(?:\1|$)/y, /[rbfuRBFU]{0,2}"(?:\\[\s\S]|[^"\\\n])*"?/y,
      /[rbfuRBFU]{0,2}'(?:\\[\s\S]|[^'\\\n])*'?/y],
    keywords: words("and as assert async await break class continue def del elif else except " +
      "finally for from global if import in is lambda nonlocal not or pass raise return try " +
      "while with yield match case type"),
    literals: words("True False None self cls"),
  },
  javascript: {
    comments: SLASH_COMMENTS,
    strings: [...QUOTED, /`(?:\\[\s\S]|[^`\\])*`?/y],
    keywords: words("async await break case catch class const continue debugger default delete " +
      "do else export extends finally for from function if import in instanceof let new of " +
      "return static super switch this throw try typeof var void while with yield interface " +
      "type enum implements declare readonly as"),
    literals: words("true false null undefined NaN Infinity"),
  },
  bash: {
    comments: [HASH_COMMENT],
    strings: QUOTED,
    keywords: words("if then else elif fi for while until do done case esac in function " +
      "return local export set unset echo cd exit source"),
    literals: words("true false"),
    variables: /\$(?:\{[^}\n]*\}|[\w@#?$!*-]+)/y,
  },
  rust: {
    comments: SLASH_COMMENTS,
    strings: [/b?r#*"[\s\S]*?"#*/y, /b?"(?:\\[\s\S]|[^"\\])*"?/y, /'(?:\\.|[^'\\\n])'/y],
    keywords: words("as async await break const continue crate dyn else enum extern fn for if " +
      "impl in let loop match mod move mut pub ref return static struct super trait type " +
      "unsafe use where while"),
    literals: words("true false self Self None Some Ok Err"),
  },
  go: {
    comments: SLASH_COMMENTS,
    strings: [...QUOTED, /`[^`]*`?/y],
    keywords: words("break case chan const continue default defer else fallthrough for func go " +
      "goto if import interface map package range return select struct switch type var"),
    literals: words("true false nil iota"),
  },
  c: { comments: SLASH_COMMENTS, strings: QUOTED, keywords: words(C_KEYWORDS),
    literals: words("true false NULL nullptr"), preprocessor: /#\s*\w+/y },
  java: { comments: SLASH_COMMENTS, strings: QUOTED,
    keywords: words(`${C_KEYWORDS} package import extends implements interface final abstract ` +
      "synchronized throws instanceof var val fun when object override"),
    literals: words("true false null this super") },
  sql: {
    comments: [/--[^\n]*/y, /\/\*[\s\S]*?(?:\*\/|$)/y],
    strings: QUOTED,
    keywords: words("select from where insert into values update set delete create table drop " +
      "alter index join left right inner outer on group by order having limit offset as and " +
      "or not null is in exists distinct union all primary key references default case when " +
      "then else end begin commit rollback returning with"),
    literals: words("true false null"),
    caseless: true,
  },
  toml: { comments: [HASH_COMMENT], strings: [/"""[\s\S]*?(?:"""|$)/y, ...QUOTED],
    keywords: new Set(), literals: words("true false"), sections: /^\s*\[[^\]\n]*\]/my },
  yaml: { comments: [HASH_COMMENT], strings: QUOTED, keywords: new Set(),
    literals: words("true false null yes no"), keys: /[\w.-]+(?=\s*:(?:\s|$))/y },
  css: { comments: [/\/\*[\s\S]*?(?:\*\/|$)/y], strings: QUOTED, keywords: new Set(),
    literals: words("important inherit initial none auto"), keys: /[\w-]+(?=\s*:)/y },
};

const ALIASES = {
  py: "python", python3: "python", js: "javascript", jsx: "javascript", ts: "javascript",
  tsx: "javascript", typescript: "javascript", mjs: "javascript", json: "javascript",
  jsonc: "javascript", sh: "bash", shell: "bash", zsh: "bash", console: "bash", rs: "rust",
  golang: "go", h: "c", cpp: "c", "c++": "c", cc: "c", hpp: "c", cs: "java", csharp: "java",
  kotlin: "java", kt: "java", swift: "java", scala: "java", yml: "yaml", ini: "toml",
  cfg: "toml", scss: "css", less: "css", postgres: "sql",
};

const EXTENSIONS = {
  py: "python", js: "javascript", mjs: "javascript", cjs: "javascript", ts: "javascript",
  tsx: "javascript", jsx: "javascript", json: "javascript", sh: "bash", bash: "bash",
  rs: "rust", go: "go", c: "c", h: "c", cpp: "c", hpp: "c", cc: "c", java: "java", kt: "java",
  cs: "java", sql: "sql", toml: "toml", ini: "toml", cfg: "toml", yaml: "yaml", yml: "yaml",
  css: "css", md: "markdown", markdown: "markdown", diff: "diff", patch: "diff",
};

/** The language of a file, from its name (for the file viewer). */
export function languageOf(path) {
  const name = path.split("/").pop().toLowerCase();
  if (name === "makefile" || name === "dockerfile") return "bash";
  return EXTENSIONS[name.includes(".") ? name.split(".").pop() : ""] || "";
}

/** Nothing past this many characters is highlighted (a huge file stays responsive). */
const LIMIT = 200_000;

/** Highlighted code as nodes; an unknown language is plain text. */
export function highlight(code, lang) {
  const key = (lang || "").toLowerCase();
  const name = LANGUAGES[key] ? key : ALIASES[key];
  if (name === undefined && key === "diff") return diffLines(code);
  const language = LANGUAGES[name];
  if (!language) return [document.createTextNode(code)];
  const head = code.slice(0, LIMIT);
  const nodes = tokens(head, language);
  if (code.length > LIMIT) nodes.push(document.createTextNode(code.slice(LIMIT)));
  return nodes;
}

function diffLines(code) {
  return code.split(/(?<=\n)/).map((line) => {
    const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" :
      line.startsWith("@@") ? "meta" : null;
    return kind ? h("span", { class: `tok-${kind}`, text: line }) : document.createTextNode(line);
  });
}

function tokens(code, language) {
  const rules = [
    ...language.comments.map((re) => ["comment", re]),
    ...(language.sections ? [["type", language.sections]] : []),
    ...(language.preprocessor ? [["keyword", language.preprocessor]] : []),
    ...(language.keys ? [["attr", language.keys]] : []),
    ...language.strings.map((re) => ["string", re]),
    ...(language.variables ? [["variable", language.variables]] : []),
  ];
  const out = [];
  let plain = "";
  const emit = (cls, text) => {
    if (plain) { out.push(document.createTextNode(plain)); plain = ""; }
    out.push(h("span", { class: `tok-${cls}`, text }));
  };
  let i = 0;
  outer: while (i < code.length) {
    for (const [cls, re] of rules) {
      re.lastIndex = i;
      const m = re.exec(code);
      if (m && m[0].length > 0) { emit(cls, m[0]); i += m[0].length; continue outer; }
    }
    const before = code[i - 1] ?? "";
    if (/[0-9]/.test(code[i]) && !/[\w$]/.test(before)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(code);
      emit("number", m[0]); i += m[0].length; continue;
    }
    if (/[A-Za-z_$]/.test(code[i]) && !/[\w$]/.test(before)) {
      WORD.lastIndex = i;
      const word = WORD.exec(code)[0];
      const probe = language.caseless ? word.toLowerCase() : word;
      const cls = language.keywords.has(probe) ? "keyword" : language.literals.has(probe)
        ? "literal" : code[i + word.length] === "(" ? "call"
        : /^[A-Z][a-z0-9]\w*$/.test(word) ? "type" : null;
      if (cls) emit(cls, word);
      else plain += word;
      i += word.length;
      continue;
    }
    plain += code[i++];
  }
  if (plain) out.push(document.createTextNode(plain));
  return out;
}
