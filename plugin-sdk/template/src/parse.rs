//! Lexer and parser: template text to a tree of [`Node`]s.
//!
//! The grammar is Go text/template's, minus the parts alert and notification
//! templates rarely use (`define`, `template`, `block`, `break`, `continue`, method
//! calls). Everything that Go only reports when a template runs but that we
//! can know from the text -- unknown functions, wrong argument counts,
//! undefined variables, invalid regular expressions in literals -- is
//! reported here, with the byte offset, so a bad rule fails at load.

use regex::Regex;

use crate::TemplateError;
use crate::funcs::{self, Func, LookupError};

/// Nesting limit for parentheses and control structures: a template is
/// configuration, and configuration must not be able to overflow the stack.
const MAX_DEPTH: usize = 64;

/// A parsed template node.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// Literal text, trim markers already applied.
    Text(String),
    /// `{{ pipeline }}`: prints the value unless the pipeline declares.
    Action(Pipe),
    /// `{{ if }}...{{ else if }}...{{ else }}...{{ end }}`.
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    /// `{{ with }}...{{ else }}...{{ end }}`: body runs with dot set.
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// `{{ range [$k, $v :=] map }}...{{ else }}...{{ end }}`.
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `[$x :=] cmd | cmd | ...`.
#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    /// Declared (or, with `assign`, assigned) variables, `$` included.
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One stage of a pipeline.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub kind: CmdKind,
    /// Byte offset in the template, for run-time errors.
    pub off: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum CmdKind {
    /// A value on its own: `$value`, `.Labels.job`, `"text"`.
    Value(Operand),
    /// A function call; a piped value becomes the last argument.
    Call {
        func: Func,
        args: Vec<Operand>,
        /// The pattern of `match` / `reReplaceAll`, compiled once at parse
        /// time when it is a literal.
        regex: Option<Regex>,
    },
}

/// A term followed by field accesses: `$labels.job`, `.Value`, `(pipe).X`.
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub term: Term,
    pub fields: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Term {
    Dot,
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// A function named as an argument: called with no arguments.
    Call(Func),
    Pipe(Box<Pipe>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    Field(String),
    Dot,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Var(s) => format!("`{s}`"),
            Tok::Field(s) => format!("`.{s}`"),
            Tok::Dot => "`.`".into(),
            Tok::Str(_) => "string".into(),
            Tok::Int(_) | Tok::Float(_) => "number".into(),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::Nil => "`nil`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Declare => "`:=`".into(),
            Tok::Assign => "`=`".into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    off: usize,
    end: usize,
}

enum Item {
    Text(String),
    Action {
        toks: Vec<Token>,
        /// Offset of the opening `{{`.
        off: usize,
        /// Offset of the closing `}}`, where "missing ..." errors point.
        close: usize,
    },
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
        help: None,
    }
}

/// The space characters Go's lexer trims and skips.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits the source into text and lexed actions, applying `{{-` / `-}}`
/// trim markers and dropping `{{/* comments */}}`.
fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let bytes = src.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let open = src[pos..].find("{{").map(|i| pos + i);
        let mut text = &src[pos..open.unwrap_or(src.len())];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            return Ok(items);
        };
        let mut p = open + 2;
        // `{{- ` trims the text before; `{{-3}}` is the number -3.
        if bytes.get(p) == Some(&b'-') && bytes.get(p + 1).is_some_and(|&b| is_space(b)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            p += 2;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        if src[p..].starts_with("/*") {
            let Some(close) = src[p + 2..].find("*/").map(|i| p + 2 + i + 2) else {
                return Err(err(open, "unclosed comment"));
            };
            if src[close..].starts_with("}}") {
                pos = close + 2;
                trim_next = false;
            } else if bytes.get(close).is_some_and(|&b| is_space(b))
                && src[close + 1..].starts_with("-}}")
            {
                pos = close + 4;
                trim_next = true;
            } else {
                return Err(err(close, "comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, close, end, trim) = lex_action(src, p, open)?;
        items.push(Item::Action {
            toks,
            off: open,
            close,
        });
        pos = end;
        trim_next = trim;
    }
}

/// Lexes one action from `p` to its closing `}}`. Returns the tokens, the
/// offset of the closing delimiter, the offset just past it, and whether it
/// carried a right trim marker.
fn lex_action(
    src: &str,
    mut p: usize,
    open: usize,
) -> Result<(Vec<Token>, usize, usize, bool), TemplateError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    loop {
        let Some(&b) = bytes.get(p) else {
            return Err(TemplateError {
                offset: open,
                message: "unclosed action".into(),
                help: Some("every `{{` needs a matching `}}`".into()),
            });
        };
        if is_space(b) {
            if src[p + 1..].starts_with("-}}") {
                return Ok((toks, p, p + 4, true));
            }
            p += 1;
            continue;
        }
        if src[p..].starts_with("}}") {
            return Ok((toks, p, p + 2, false));
        }
        let start = p;
        let tok = match b {
            b'|' => {
                p += 1;
                Tok::Pipe
            }
            b'(' => {
                p += 1;
                Tok::LParen
            }
            b')' => {
                p += 1;
                Tok::RParen
            }
            b',' => {
                p += 1;
                Tok::Comma
            }
            b'=' => {
                p += 1;
                Tok::Assign
            }
            b':' => {
                if bytes.get(p + 1) != Some(&b'=') {
                    return Err(err(p, "expected `:=`"));
                }
                p += 2;
                Tok::Declare
            }
            b'"' => {
                let (s, end) = lex_quoted(src, p)?;
                p = end;
                Tok::Str(s)
            }
            b'`' => {
                let Some(close) = src[p + 1..].find('`') else {
                    return Err(err(p, "unterminated raw quoted string"));
                };
                let s = src[p + 1..p + 1 + close].to_string();
                p += close + 2;
                Tok::Str(s)
            }
            b'$' => {
                p += 1 + ident_len(&src[p + 1..]);
                Tok::Var(src[start..p].to_string())
            }
            b'.' if bytes.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                let (t, end) = lex_number(src, p)?;
                p = end;
                t
            }
            b'.' => {
                let n = ident_len(&src[p + 1..]);
                p += 1 + n;
                if n == 0 {
                    Tok::Dot
                } else {
                    Tok::Field(src[start + 1..p].to_string())
                }
            }
            b'+' | b'-' | b'0'..=b'9' => {
                let (t, end) = lex_number(src, p)?;
                p = end;
                t
            }
            b'\'' => {
                return Err(err(
                    p,
                    "character constants are not supported; use a string",
                ));
            }
            _ => {
                let n = ident_len(&src[p..]);
                if n == 0 {
                    let c = src[p..].chars().next().unwrap_or('?');
                    return Err(err(p, format!("unexpected `{c}` in action")));
                }
                p += n;
                match &src[start..p] {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    word => Tok::Ident(word.to_string()),
                }
            }
        };
        toks.push(Token {
            tok,
            off: start,
            end: p,
        });
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(_, c)| !is_ident_char(c))
        .map_or(s.len(), |(i, _)| i)
}

/// Lexes a Go number literal: decimal, `0x`/`0o`/`0b`, legacy octal,
/// floats with exponents, `_` separators.
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), TemplateError> {
    let bytes = src.as_bytes();
    let mut p = start;
    if matches!(bytes.get(p), Some(b'+' | b'-')) {
        p += 1;
    }
    while let Some(&b) = bytes.get(p) {
        let after_exp = p > start && matches!(bytes[p - 1], b'e' | b'E' | b'p' | b'P');
        if b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'.'
            || (after_exp && matches!(b, b'+' | b'-'))
        {
            p += 1;
        } else {
            break;
        }
    }
    let text = &src[start..p];
    // `$labels.tier-name` lexes as `$labels.tier` then `-name`: say so.
    let dashed = text.len() > 1
        && text.starts_with('-')
        && text[1..].starts_with(|c: char| c.is_alphabetic() || c == '_');
    let bad = || TemplateError {
        offset: start,
        message: format!("bad number syntax: `{text}`"),
        help: dashed
            .then(|| "a label name with `-` needs `index $labels \"name-with-dash\"`".to_string()),
    };
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, digits) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = digits.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &digits[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &digits[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &digits[2..]))
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Some((8, &digits[1..]))
    } else {
        None
    };
    let tok = if let Some((radix, body)) = radix {
        let v = i64::from_str_radix(body, radix).map_err(|_| bad())?;
        Tok::Int(if neg { -v } else { v })
    } else if digits.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        if !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return Err(bad());
        }
        let v: f64 = digits.parse().map_err(|_| bad())?;
        Tok::Float(if neg { -v } else { v })
    } else {
        let v: i64 = digits.parse().map_err(|_| bad())?;
        Tok::Int(if neg { -v } else { v })
    };
    Ok((tok, p))
}

/// Lexes a double-quoted Go string with its escapes.
fn lex_quoted(src: &str, start: usize) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = start + 1 + i;
        match c {
            '"' => return Ok((out, at + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    'a' => Some('\u{07}'),
                    'b' => Some('\u{08}'),
                    'f' => Some('\u{0c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{0b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let (len, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => (2, 8),
                    _ => return Err(err(at, format!("unknown escape sequence `\\{e}`"))),
                };
                let mut digits = String::new();
                if radix == 8 {
                    digits.push(e);
                }
                for _ in 0..len {
                    match chars.next() {
                        Some((_, d)) => digits.push(d),
                        None => return Err(err(at, "unterminated quoted string")),
                    }
                }
                let code = u32::from_str_radix(&digits, radix)
                    .map_err(|_| err(at, format!("invalid escape `\\{digits}`")))?;
                match char::from_u32(code) {
                    Some(c) => out.push(c),
                    None => return Err(err(at, format!("invalid escape `\\{digits}`"))),
                }
            }
            c => out.push(c),
        }
    }
    Err(err(start, "unterminated quoted string"))
}

/// Where a parsed list stopped.
enum Stop {
    Eof,
    End(usize),
    Else { off: usize, cond: Option<Pipe> },
}

/// How many variables a pipeline may declare.
#[derive(Clone, Copy, PartialEq)]
enum Decl {
    One,
    Two,
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    depth: usize,
}

/// Parses a template's source; `vars` are the variables defined in front
/// of it besides `$`.
pub(crate) fn parse(src: &str, vars: &[&str]) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        items: lex(src)?.into_iter(),
        vars: std::iter::once("$")
            .chain(vars.iter().copied())
            .map(str::to_string)
            .collect(),
        depth: 0,
    };
    let (nodes, stop) = p.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End(off) => Err(err(off, "unexpected {{ end }}")),
        Stop::Else { off, .. } => Err(err(off, "unexpected {{ else }}")),
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, off, close) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action { toks, off, close } => (toks, off, close),
            };
            let keyword = match toks.first().map(|t| &t.tok) {
                Some(Tok::Ident(k)) => k.as_str(),
                Some(_) => "",
                None => return Err(err(close, "missing value for command")),
            };
            match keyword {
                "end" => {
                    if let Some(t) = toks.get(1) {
                        return Err(err(
                            t.off,
                            format!("unexpected {} in end", t.tok.describe()),
                        ));
                    }
                    return Ok((nodes, Stop::End(off)));
                }
                "else" => {
                    let cond = match toks.get(1).map(|t| &t.tok) {
                        None => None,
                        Some(Tok::Ident(k)) if k == "if" => {
                            Some(self.pipe_of(&toks[2..], close, Decl::One)?)
                        }
                        Some(t) => {
                            return Err(err(
                                toks[1].off,
                                format!("expected end; found {}", t.describe()),
                            ));
                        }
                    };
                    return Ok((nodes, Stop::Else { off, cond }));
                }
                "if" | "with" | "range" => {
                    nodes.push(self.control(keyword, &toks[1..], off, close)?)
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(err(
                        toks[0].off,
                        format!("`{keyword}` is not supported in Vigil templates"),
                    ));
                }
                _ => nodes.push(Node::Action(self.pipe_of(&toks, close, Decl::One)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(
        &mut self,
        kind: &str,
        toks: &[Token],
        off: usize,
        close: usize,
    ) -> Result<Node, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(off, "template nests too deeply"));
        }
        let mark = self.vars.len();
        let decl = if kind == "range" {
            Decl::Two
        } else {
            Decl::One
        };
        let pipe = self.pipe_of(toks, close, decl)?;
        let unclosed = || TemplateError {
            offset: off,
            message: format!("unclosed `{kind}`"),
            help: Some("add a matching {{ end }}".into()),
        };
        let node = if kind == "if" {
            let mut branches = Vec::new();
            let mut cond = pipe;
            let otherwise = loop {
                let (body, stop) = self.list()?;
                branches.push((cond, body));
                match stop {
                    Stop::End(_) => break Vec::new(),
                    Stop::Else {
                        cond: Some(next), ..
                    } => cond = next,
                    Stop::Else { cond: None, .. } => break self.else_list(kind, off)?,
                    Stop::Eof => return Err(unclosed()),
                }
            };
            Node::If {
                branches,
                otherwise,
            }
        } else {
            let (body, stop) = self.list()?;
            let otherwise = match stop {
                Stop::End(_) => Vec::new(),
                Stop::Else { cond: None, .. } => self.else_list(kind, off)?,
                Stop::Else { off, cond: Some(_) } => {
                    return Err(err(off, format!("`else if` cannot follow `{kind}`")));
                }
                Stop::Eof => return Err(unclosed()),
            };
            if kind == "with" {
                Node::With {
                    pipe,
                    body,
                    otherwise,
                }
            } else {
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                }
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(node)
    }

    /// The list after a final `{{ else }}`, which must end with `{{ end }}`.
    fn else_list(&mut self, kind: &str, off: usize) -> Result<Vec<Node>, TemplateError> {
        let (nodes, stop) = self.list()?;
        match stop {
            Stop::End(_) => Ok(nodes),
            Stop::Else { off, .. } => Err(err(off, "expected end; found else")),
            Stop::Eof => Err(TemplateError {
                offset: off,
                message: format!("unclosed `{kind}`"),
                help: Some("add a matching {{ end }}".into()),
            }),
        }
    }

    /// Parses the tokens of a whole action as one pipeline.
    fn pipe_of(&mut self, toks: &[Token], close: usize, mode: Decl) -> Result<Pipe, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut i = 0;
        if let Some(Tok::Var(first)) = toks.first().map(|t| &t.tok) {
            match toks.get(1).map(|t| &t.tok) {
                Some(Tok::Declare) => {
                    decl.push(first.clone());
                    i = 2;
                }
                Some(Tok::Assign) => {
                    if !self.vars.contains(first) {
                        return Err(err(toks[0].off, format!("undefined variable `{first}`")));
                    }
                    decl.push(first.clone());
                    assign = true;
                    i = 2;
                }
                Some(Tok::Comma) => {
                    if mode != Decl::Two {
                        return Err(err(toks[1].off, "too many declarations"));
                    }
                    match (toks.get(2).map(|t| &t.tok), toks.get(3).map(|t| &t.tok)) {
                        (Some(Tok::Var(second)), Some(Tok::Declare)) => {
                            decl.push(first.clone());
                            decl.push(second.clone());
                            i = 4;
                        }
                        _ => return Err(err(toks[1].off, "expected `$key, $value :=`")),
                    }
                }
                _ => {}
            }
        }
        if decl.iter().any(|d| d == "$") {
            return Err(err(toks[0].off, "cannot declare `$`"));
        }
        let cmds = self.pipeline(toks, &mut i, close, false)?;
        if let Some(t) = toks.get(i) {
            return Err(err(
                t.off,
                format!("unexpected {} in operand", t.tok.describe()),
            ));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// `cmd ('|' cmd)*`, stopping before `)` when inside parentheses.
    fn pipeline(
        &mut self,
        toks: &[Token],
        i: &mut usize,
        close: usize,
        in_paren: bool,
    ) -> Result<Vec<Cmd>, TemplateError> {
        let mut cmds = Vec::new();
        loop {
            let piped = !cmds.is_empty();
            cmds.push(self.command(toks, i, close, piped)?);
            match toks.get(*i).map(|t| &t.tok) {
                Some(Tok::Pipe) => *i += 1,
                Some(Tok::RParen) if in_paren => return Ok(cmds),
                None if !in_paren => return Ok(cmds),
                None => return Err(err(close, "unclosed left paren")),
                Some(t) => return Err(err(toks[*i].off, format!("unexpected {}", t.describe()))),
            }
        }
    }

    fn command(
        &mut self,
        toks: &[Token],
        i: &mut usize,
        close: usize,
        piped: bool,
    ) -> Result<Cmd, TemplateError> {
        let off = toks.get(*i).map_or(close, |t| t.off);
        let mut operands: Vec<(Operand, usize)> = Vec::new();
        while let Some(t) = toks.get(*i) {
            match t.tok {
                Tok::Pipe | Tok::RParen => break,
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err(err(
                        t.off,
                        format!("unexpected {} in command", t.tok.describe()),
                    ));
                }
                _ => {
                    let at = t.off;
                    operands.push((self.operand(toks, i, close)?, at));
                }
            }
        }
        let mut it = operands.into_iter();
        let Some((head, _)) = it.next() else {
            let msg = if piped {
                "missing command after `|`"
            } else {
                "missing value for command"
            };
            return Err(err(off, msg));
        };
        let rest: Vec<(Operand, usize)> = it.collect();
        // A function named as an argument (or followed by a field) is called
        // with no arguments, so it must be one that takes none.
        let head_is_call = matches!(head.term, Term::Call(_)) && head.fields.is_empty();
        let niladic = rest
            .iter()
            .map(|(o, at)| (o, *at))
            .chain((!head_is_call).then_some((&head, off)));
        for (o, at) in niladic {
            if let Term::Call(f) = o.term
                && funcs::arity(f).min > 0
            {
                let name = funcs::name(f);
                return Err(err(
                    at,
                    format!(
                        "`{name}` needs arguments here; call it in parentheses: `({name} ...)`"
                    ),
                ));
            }
        }
        let kind = match head.term {
            Term::Call(func) if head.fields.is_empty() => {
                let arity = funcs::arity(func);
                let given = rest.len() + usize::from(piped);
                let ok = given >= arity.min && arity.max.is_none_or(|m| given <= m);
                if !ok {
                    let want = match arity.max {
                        Some(m) if m == arity.min => format!("{m}"),
                        Some(m) => format!("{}..{m}", arity.min),
                        None => format!("at least {}", arity.min),
                    };
                    let piped_note = if piped {
                        " (including the piped value)"
                    } else {
                        ""
                    };
                    return Err(err(
                        off,
                        format!(
                            "wrong number of arguments for `{}`: want {want}, got {given}{piped_note}",
                            funcs::name(func)
                        ),
                    ));
                }
                let regex = match (func, rest.first()) {
                    (
                        Func::Match | Func::ReReplaceAll,
                        Some((
                            Operand {
                                term: Term::Str(pat),
                                fields,
                            },
                            at,
                        )),
                    ) if fields.is_empty() => Some(
                        Regex::new(pat)
                            .map_err(|e| err(*at, format!("invalid regular expression: {e}")))?,
                    ),
                    _ => None,
                };
                CmdKind::Call {
                    func,
                    args: rest.into_iter().map(|(o, _)| o).collect(),
                    regex,
                }
            }
            _ => {
                if piped {
                    return Err(err(
                        off,
                        "cannot pipe a value into something that is not a function",
                    ));
                }
                if let Some((_, at)) = rest.first() {
                    return Err(err(*at, "can't give argument to non-function"));
                }
                if matches!(head.term, Term::Nil) && head.fields.is_empty() {
                    return Err(err(off, "nil is not a command"));
                }
                CmdKind::Value(head)
            }
        };
        Ok(Cmd { kind, off })
    }

    fn operand(
        &mut self,
        toks: &[Token],
        i: &mut usize,
        close: usize,
    ) -> Result<Operand, TemplateError> {
        let t = &toks[*i];
        *i += 1;
        let mut fields = Vec::new();
        let mut end = t.end;
        let term = match &t.tok {
            Tok::Ident(name) => Term::Call(resolve(name, t.off)?),
            Tok::Var(name) => {
                if !self.vars.iter().any(|v| v == name) {
                    return Err(TemplateError {
                        offset: t.off,
                        message: format!("undefined variable `{name}`"),
                        help: Some(format!("variables in scope here: {}", self.vars.join(", "))),
                    });
                }
                Term::Var(name.clone())
            }
            Tok::Field(name) => {
                fields.push(name.clone());
                Term::Dot
            }
            Tok::Dot => Term::Dot,
            Tok::Str(s) => Term::Str(s.clone()),
            Tok::Int(v) => Term::Int(*v),
            Tok::Float(v) => Term::Float(*v),
            Tok::Bool(b) => Term::Bool(*b),
            Tok::Nil => Term::Nil,
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(err(t.off, "template nests too deeply"));
                }
                let cmds = self.pipeline(toks, i, close, true)?;
                self.depth -= 1;
                // `pipeline` returned on a `)`, which we consume here.
                end = toks[*i].end;
                *i += 1;
                Term::Pipe(Box::new(Pipe {
                    decl: Vec::new(),
                    assign: false,
                    cmds,
                }))
            }
            other => return Err(err(t.off, format!("unexpected {}", other.describe()))),
        };
        // Fields bind to the operand only when written right against it:
        // `$labels.job` is one operand, `$labels .job` two.
        while let Some(Token {
            tok: Tok::Field(name),
            off,
            end: e,
        }) = toks.get(*i)
        {
            if *off != end {
                break;
            }
            fields.push(name.clone());
            end = *e;
            *i += 1;
        }
        Ok(Operand { term, fields })
    }
}

/// Resolves a function name, or explains why it cannot be called.
fn resolve(name: &str, off: usize) -> Result<Func, TemplateError> {
    const KEYWORDS: &[&str] = &[
        "if", "else", "end", "with", "range", "define", "template", "block", "break", "continue",
    ];
    if KEYWORDS.contains(&name) {
        return Err(err(off, format!("unexpected keyword `{name}`")));
    }
    match funcs::lookup(name) {
        Ok((f, _)) => Ok(f),
        Err(LookupError::Unsupported) => Err(TemplateError {
            offset: off,
            message: format!("function `{name}` is not supported in Vigil templates"),
            help: Some("templates cannot run queries or call other templates".into()),
        }),
        Err(LookupError::Unknown(hint)) => Err(TemplateError {
            offset: off,
            message: format!("unknown function `{name}`"),
            help: hint.map(|h| format!("did you mean `{h}`?")),
        }),
    }
}
