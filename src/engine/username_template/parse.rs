//! The parser of the Go `text/template` subset: text, `{{ }}` actions with
//! `{{-`/`-}}` trim markers and `/* */` comments, fields, literals, calls,
//! parentheses and pipelines. Types are checked here, so every mistake in a
//! template is a 400 when the role is written rather than a failed request
//! later: all helpers return strings, and the only integers are literals,
//! so each argument's type and each length is known before rendering.

use super::{Call, Expr, Field, Fmt, ParseError, Piece};

/// Longer templates are refused: account names are at most 64 characters,
/// so a template this long is a mistake, and it bounds the work of a check.
const MAX_TEMPLATE_LEN: usize = 4096;
/// The most characters one `random` may ask for (Vault has no bound; this
/// keeps one template from asking for gigabytes).
const MAX_RANDOM: i64 = 1024;

/// Go's white space for trim markers and between operands.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A checked value: a string expression, or an integer (always a literal).
enum Val {
    Str(Expr),
    Int(i64),
}

impl Val {
    fn noun(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
        }
    }
}

/// The helpers: name, number of arguments, and how they are called.
const FUNCS: &[(&str, usize, &str)] = &[
    ("random", 1, "random LENGTH"),
    ("truncate", 2, "VALUE | truncate LENGTH"),
    ("truncate_sha256", 2, "VALUE | truncate_sha256 LENGTH"),
    ("uppercase", 1, "VALUE | uppercase"),
    ("lowercase", 1, "VALUE | lowercase"),
    ("replace", 3, "VALUE | replace FIND REPLACEMENT"),
    ("sha256", 1, "VALUE | sha256"),
    ("base64", 1, "VALUE | base64"),
    ("unix_time", 0, "unix_time"),
    ("unix_time_millis", 0, "unix_time_millis"),
    ("timestamp", 1, "timestamp LAYOUT"),
    ("uuid", 0, "uuid"),
];

/// One operand of a command, before it is known whether it is a call.
enum Operand {
    Value(Val),
    /// A bare name: the function of its command, or a call without
    /// arguments where it stands as an argument (Go's rule).
    Name(String),
}

/// Where a pipeline ends: at the action's `}}`, or at the `)` of the `(`
/// at this offset.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Action,
    Paren(usize),
}

pub(super) fn parse(src: &str) -> Result<Vec<Piece>, ParseError> {
    if src.is_empty() {
        return Err(ParseError::new(src, 0, "the template is empty"));
    }
    if src.len() > MAX_TEMPLATE_LEN {
        return Err(ParseError::new(
            src,
            MAX_TEMPLATE_LEN,
            format!(
                "the template is {} bytes long; at most {MAX_TEMPLATE_LEN} are allowed",
                src.len()
            ),
        ));
    }
    Parser { src, pos: 0 }.template()
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.src, at, message)
    }

    fn rest(&self) -> &[u8] {
        &self.src.as_bytes()[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    /// The closing delimiter at the cursor: its length and whether it is
    /// trim-marked (Go: one white space character, `-`, then `}}`).
    fn at_close(&self) -> Option<(usize, bool)> {
        let rest = self.rest();
        if rest.starts_with(b"}}") {
            Some((2, false))
        } else if rest.len() >= 4 && is_space(rest[0]) && rest[1..].starts_with(b"-}}") {
            Some((4, true))
        } else {
            None
        }
    }

    /// Skips white space up to (not into) a trim-marked `}}`; says whether
    /// it skipped any, since Go wants operands separated.
    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while self.at_close().is_none() && self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn template(mut self) -> Result<Vec<Piece>, ParseError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        // After `-}}`, leading white space of the next text goes.
        let mut trim_next = false;
        loop {
            let open = self.src[self.pos..].find("{{").map(|i| self.pos + i);
            let chunk = &self.src[self.pos..open.unwrap_or(self.src.len())];
            text.push_str(if trim_next {
                chunk.trim_start_matches([' ', '\t', '\r', '\n'])
            } else {
                chunk
            });
            let Some(open) = open else { break };
            self.pos = open + 2;
            let rest = self.rest();
            if rest.len() >= 2 && rest[0] == b'-' && is_space(rest[1]) {
                text.truncate(text.trim_end_matches([' ', '\t', '\r', '\n']).len());
                self.pos += 2;
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            trim_next = if self.rest().starts_with(b"/*") {
                self.comment(open)?
            } else {
                pieces.push(match self.pipeline(End::Action, open)? {
                    Val::Str(expr) => Piece::Value(expr),
                    Val::Int(n) => Piece::Text(n.to_string()),
                });
                self.close(open)?
            };
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(pieces)
    }

    /// `/* ... */` straight after the opening delimiter, and the closing
    /// delimiter straight after it, as Go wants.
    fn comment(&mut self, open: usize) -> Result<bool, ParseError> {
        let Some(end) = self.src[self.pos + 2..].find("*/") else {
            return Err(self.err(open, "unclosed comment: '/*' without '*/'"));
        };
        self.pos += 2 + end + 2;
        match self.at_close() {
            Some((len, trim)) => {
                self.pos += len;
                Ok(trim)
            }
            None => Err(self.err(
                self.pos,
                "a comment must end the action: write '*/}}' or '*/ -}}'",
            )),
        }
    }

    fn close(&mut self, open: usize) -> Result<bool, ParseError> {
        self.skip_space();
        match self.at_close() {
            Some((len, trim)) => {
                self.pos += len;
                Ok(trim)
            }
            None if self.peek().is_none() => Err(self.unclosed(open)),
            None => Err(self.unexpected()),
        }
    }

    fn unclosed(&self, open: usize) -> ParseError {
        self.err(open, "unclosed action: '{{' without '}}'")
    }

    fn unexpected(&self) -> ParseError {
        let rest = &self.src[self.pos..];
        let message = if rest.starts_with("-}}") {
            "a trim marker needs white space before it: write ' -}}'".to_owned()
        } else if rest.starts_with(')') {
            "unexpected ')' without a matching '('".to_owned()
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            format!("unexpected {c:?}")
        };
        self.err(self.pos, message)
    }

    /// `command ('|' command)*`, each command's value passed as the last
    /// argument of the next.
    fn pipeline(&mut self, end: End, open: usize) -> Result<Val, ParseError> {
        // The value passed on, and where its command starts.
        let mut piped: Option<(usize, Val)> = None;
        loop {
            self.skip_space();
            let start = self.pos;
            let value = self.command(piped.take(), end, open, start)?;
            self.skip_space();
            if self.peek() == Some(b'|') {
                self.pos += 1;
                piped = Some((start, value));
                continue;
            }
            return Ok(value);
        }
    }

    fn command(
        &mut self,
        piped: Option<(usize, Val)>,
        end: End,
        open: usize,
        start: usize,
    ) -> Result<Val, ParseError> {
        let mut operands: Vec<(usize, Operand)> = Vec::new();
        loop {
            let spaced = self.skip_space();
            let at = self.pos;
            let closing = self.at_close().is_some() || self.peek().is_none();
            match (end, self.peek()) {
                (End::Action, None) => return Err(self.unclosed(open)),
                (End::Action, _) if closing => break,
                (End::Paren(paren), _) if closing => {
                    return Err(self.err(paren, "unclosed '('"));
                }
                (_, Some(b'|')) | (End::Paren(_), Some(b')')) => break,
                (End::Action, Some(b')')) => return Err(self.unexpected()),
                _ if !operands.is_empty() && !spaced => {
                    return Err(if self.rest().starts_with(b"-}}") {
                        self.unexpected()
                    } else {
                        self.err(at, "missing space between arguments")
                    });
                }
                _ => {}
            }
            operands.push((at, self.operand(open)?));
        }
        let mut operands = operands.into_iter();
        let Some((first_at, first)) = operands.next() else {
            let message = match (&piped, end) {
                (Some(_), _) => "missing function after '|'",
                (None, End::Paren(_)) => "empty parentheses",
                (None, End::Action) => "empty action",
            };
            return Err(self.err(start, message));
        };
        match first {
            Operand::Name(name) => {
                let mut args = Vec::new();
                for (at, operand) in operands {
                    args.push(match operand {
                        Operand::Value(val) => (at, val),
                        Operand::Name(name) => (at, self.call(&name, at, Vec::new())?),
                    });
                }
                args.extend(piped);
                self.call(&name, first_at, args)
            }
            Operand::Value(val) => {
                if let Some((at, _)) = operands.next() {
                    return Err(self.err(
                        at,
                        "only a function takes arguments; a field or a literal stands alone",
                    ));
                }
                if piped.is_some() {
                    return Err(self.err(
                        first_at,
                        "after '|' comes a function, which receives the value as its last argument",
                    ));
                }
                Ok(val)
            }
        }
    }

    fn operand(&mut self, open: usize) -> Result<Operand, ParseError> {
        let at = self.pos;
        let byte = self.peek().unwrap_or(b' ');
        match byte {
            b'"' => Ok(Operand::Value(Val::Str(Expr::Lit(self.quoted()?)))),
            b'`' => Ok(Operand::Value(Val::Str(Expr::Lit(self.raw()?)))),
            b'.' => Ok(Operand::Value(Val::Str(Expr::Field(self.field()?)))),
            b'+' | b'-' | b'0'..=b'9' => Ok(Operand::Value(Val::Int(self.number()?))),
            b'(' => {
                self.pos += 1;
                let value = self.pipeline(End::Paren(at), open)?;
                // The pipeline stops only at its ')'.
                self.pos += 1;
                Ok(Operand::Value(value))
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let name = self.word();
                match name {
                    "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
                    | "break" | "continue" => Err(self.err(
                        at,
                        format!(
                            "'{name}' actions are not supported: only values and pipelines are"
                        ),
                    )),
                    "true" | "false" | "nil" => Err(self.err(
                        at,
                        format!("'{name}' is not supported: use strings and integers"),
                    )),
                    _ => Ok(Operand::Name(name.to_owned())),
                }
            }
            b'$' => Err(self.err(at, "variables ('$') are not supported")),
            b'\'' => Err(self.err(
                at,
                "character constants are not supported: use a quoted string",
            )),
            _ => Err(self.unexpected()),
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_byte) {
            self.pos += 1;
        }
        let src: &'a str = self.src;
        &src[start..self.pos]
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let at = self.pos;
        self.pos += 1;
        let name = self.word();
        let field = match name {
            "RoleName" => Field::RoleName,
            "DisplayName" => Field::DisplayName,
            "" => {
                return Err(self.err(
                    at,
                    "'.' alone (the whole data) is not supported: use .RoleName or .DisplayName",
                ));
            }
            _ => {
                return Err(self.err(
                    at,
                    format!("unknown field .{name}: the fields are .RoleName and .DisplayName"),
                ));
            }
        };
        if self.peek() == Some(b'.') {
            return Err(self.err(self.pos, "fields have no fields of their own"));
        }
        Ok(field)
    }

    /// A decimal integer with an optional sign. Go would also read hex,
    /// octal (a leading 0), `_` separators, floats and characters; those are
    /// refused rather than read differently.
    fn number(&mut self) -> Result<i64, ParseError> {
        let at = self.pos;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        while self.peek().is_some_and(|b| is_ident_byte(b) || b == b'.') {
            self.pos += 1;
        }
        let text = &self.src[at..self.pos];
        let digits = text.trim_start_matches(['+', '-']);
        if digits.is_empty() {
            return Err(self.err(at, format!("unexpected {:?}", &text[..1])));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(at, format!("{text:?} is not a decimal integer")));
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(self.err(
                at,
                format!("{text:?}: write integers without a leading 0 (Go reads it as octal)"),
            ));
        }
        text.parse()
            .map_err(|_| self.err(at, format!("{text:?} is too large")))
    }

    /// A double-quoted string with Go's escapes.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let at = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.err(at, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.err(at, "unterminated quoted string")),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ParseError> {
        let at = self.pos - 1;
        let Some(c) = self.peek() else {
            return Err(self.err(at, "unterminated quoted string"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let (digits, radix) = match c {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => return Err(self.err(at, "unknown escape sequence")),
        };
        let text = self.src.get(self.pos..self.pos + digits).unwrap_or("");
        let value = (text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(text, radix).ok())
            .flatten()
            .ok_or_else(|| self.err(at, "malformed escape sequence"))?;
        self.pos += digits;
        // Go writes \x and octal escapes as raw bytes; above 0x7f they would
        // not be UTF-8, which a name cannot hold anyway.
        if matches!(c, b'x' | b'0'..=b'7') && value > 0x7f {
            return Err(self.err(
                at,
                "byte escapes above \\x7f are not supported: write the character or \\u",
            ));
        }
        char::from_u32(value).ok_or_else(|| self.err(at, "escape is not a valid character"))
    }

    /// A raw string: no escapes; Go drops carriage returns from it.
    fn raw(&mut self) -> Result<String, ParseError> {
        let at = self.pos;
        let Some(len) = self.src[at + 1..].find('`') else {
            return Err(self.err(at, "unterminated raw string"));
        };
        self.pos = at + 1 + len + 1;
        Ok(self.src[at + 1..at + 1 + len].replace('\r', ""))
    }

    /// A call of `name` with `args` (the piped value last), checked.
    fn call(&self, name: &str, at: usize, args: Vec<(usize, Val)>) -> Result<Val, ParseError> {
        if name == "printf" {
            return self.printf(at, args);
        }
        let Some(&(_, arity, usage)) = FUNCS.iter().find(|f| f.0 == name) else {
            return Err(self.err(at, unknown_function(name)));
        };
        if args.len() != arity {
            let plural = if arity == 1 { "" } else { "s" };
            return Err(self.err(
                at,
                format!(
                    "{name} takes {arity} argument{plural} ({usage}), got {}",
                    args.len()
                ),
            ));
        }
        let mut args = Args {
            parser: self,
            at,
            name,
            usage,
            items: args.into_iter(),
            index: 0,
        };
        let call = match name {
            "random" => {
                Call::Random(args.length(0, MAX_RANDOM, &format!("be 0 to {MAX_RANDOM}"))?)
            }
            "truncate" => Call::Truncate(args.length(1, i64::MAX, "be > 0")?, args.string()?),
            "truncate_sha256" => Call::TruncateSha256(
                args.length(9, i64::MAX, "be > 8 (the hash takes 8)")?,
                args.string()?,
            ),
            "uppercase" => Call::Uppercase(args.string()?),
            "lowercase" => Call::Lowercase(args.string()?),
            "replace" => Call::Replace {
                find: args.string()?,
                with: args.string()?,
                value: args.string()?,
            },
            "sha256" => Call::Sha256(args.string()?),
            "base64" => Call::Base64(args.string()?),
            "unix_time" => Call::UnixTime,
            "unix_time_millis" => Call::UnixTimeMillis,
            "timestamp" => Call::Timestamp(args.string()?),
            "uuid" => Call::Uuid,
            _ => return Err(self.err(at, unknown_function(name))),
        };
        Ok(Val::Str(Expr::Call(call)))
    }

    fn printf(&self, at: usize, args: Vec<(usize, Val)>) -> Result<Val, ParseError> {
        let mut args = args.into_iter();
        let verbs = match args.next() {
            Some((fmt_at, Val::Str(Expr::Lit(format)))) => {
                parse_format(&format).map_err(|message| self.err(fmt_at, message))?
            }
            Some((fmt_at, _)) => {
                return Err(self.err(fmt_at, "printf's format must be a quoted string"));
            }
            None => return Err(self.err(at, "printf needs a quoted format string")),
        };
        let args: Vec<_> = args.collect();
        let wanted = verbs.iter().filter(|v| !matches!(v, Verb::Text(_))).count();
        if wanted != args.len() {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            return Err(self.err(
                at,
                format!(
                    "printf's format has {wanted} verb{} (%s, %d) but {} value{} follow",
                    plural(wanted),
                    args.len(),
                    plural(args.len()),
                ),
            ));
        }
        let mut args = args.into_iter().enumerate();
        let mut pieces = Vec::new();
        for verb in verbs {
            if let Verb::Text(text) = verb {
                pieces.push(Fmt::Text(text));
                continue;
            }
            let piece = match (verb, args.next()) {
                (Verb::Str, Some((_, (_, Val::Str(expr))))) => Fmt::Str(expr),
                (Verb::Int, Some((_, (_, Val::Int(n))))) => Fmt::Int(n),
                (verb, Some((i, (arg_at, val)))) => {
                    let (name, needs) = match verb {
                        Verb::Int => ("%d", "an integer"),
                        _ => ("%s", "a string"),
                    };
                    return Err(self.err(
                        arg_at,
                        format!(
                            "printf's value {} is {}, but its verb {name} needs {needs}",
                            i + 1,
                            val.noun()
                        ),
                    ));
                }
                (_, None) => return Err(self.err(at, "printf is missing a value")),
            };
            pieces.push(piece);
        }
        Ok(Val::Str(Expr::Printf(pieces)))
    }
}

/// A call's arguments, taken in order with their types checked.
struct Args<'p, 'a> {
    parser: &'p Parser<'a>,
    /// Where the call is, for a missing argument.
    at: usize,
    name: &'p str,
    usage: &'static str,
    items: std::vec::IntoIter<(usize, Val)>,
    index: usize,
}

impl Args<'_, '_> {
    fn next(&mut self) -> Result<(usize, Val), ParseError> {
        self.index += 1;
        let name = self.name;
        self.items.next().ok_or_else(|| {
            self.parser
                .err(self.at, format!("{name} is missing an argument"))
        })
    }

    fn mismatch(&self, at: usize, want: &str, got: &Val) -> ParseError {
        self.parser.err(
            at,
            format!(
                "argument {} of {} must be {want}, got {} ({})",
                self.index,
                self.name,
                got.noun(),
                self.usage
            ),
        )
    }

    fn string(&mut self) -> Result<Box<Expr>, ParseError> {
        match self.next()? {
            (_, Val::Str(expr)) => Ok(Box::new(expr)),
            (at, val) => Err(self.mismatch(at, "a string", &val)),
        }
    }

    /// A length, within the bounds Vault checks when the helper runs;
    /// checked here since integers are always literals.
    fn length(&mut self, min: i64, max: i64, rule: &str) -> Result<usize, ParseError> {
        let (at, n) = match self.next()? {
            (at, Val::Int(n)) => (at, n),
            (at, val) => return Err(self.mismatch(at, "an integer", &val)),
        };
        if !(min..=max).contains(&n) {
            let name = self.name;
            return Err(self
                .parser
                .err(at, format!("{name}'s length must {rule}, got {n}")));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

fn unknown_function(name: &str) -> String {
    let known: Vec<&str> = FUNCS.iter().map(|f| f.0).collect();
    let why = match name {
        "decode_base64" | "hex" | "decode_hex" | "glob" => "is OpenBao's and not supported here",
        "and" | "or" | "not" | "len" | "index" | "slice" | "print" | "println" | "html" | "js"
        | "urlquery" | "call" | "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            "is a Go template built-in that is not supported here"
        }
        _ => "is not a known function",
    };
    format!(
        "{name} {why}; the functions are printf, {}",
        known.join(", ")
    )
}

/// A piece of a printf format.
enum Verb {
    Text(String),
    Str,
    Int,
}

/// A printf format of literal text, `%s`, `%d` and `%%`.
fn parse_format(format: &str) -> Result<Vec<Verb>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let verb = match chars.next() {
            Some('%') => {
                text.push('%');
                continue;
            }
            Some('s') => Verb::Str,
            Some('d') => Verb::Int,
            Some(other) => {
                return Err(format!(
                    "printf verb %{other} is not supported: use %s, %d or %% (no flags or widths)"
                ));
            }
            None => return Err("printf's format ends with a lone '%'".to_owned()),
        };
        if !text.is_empty() {
            pieces.push(Verb::Text(std::mem::take(&mut text)));
        }
        pieces.push(verb);
    }
    if !text.is_empty() {
        pieces.push(Verb::Text(text));
    }
    Ok(pieces)
}
