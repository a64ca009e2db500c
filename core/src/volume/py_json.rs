//! A state file read the way upstream's reconciler reads it (`json.loads(path.read_text())`,
//! Python 3.11): the start decision must not flip on a file one side accepts and the other
//! refuses. What Python accepts and strict JSON does not is accepted here too (`NaN`,
//! `Infinity`, `-Infinity`, integers of any size, floats that overflow to infinity, lone
//! surrogate escapes); what Python refuses is refused (a UTF-8 BOM, trailing commas, control
//! characters in strings, anything after the value).
//!
//! Only the top level's members are kept, and of nested values only their kind: the parser keeps
//! an explicit stack, so any depth within the size cap is read without recursion (Python raises
//! `RecursionError` near 1,000 levels and crashes the pass; here such a file is read like any
//! other).

/// A top-level member's value, as much of it as the decision and its log line need.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    Null,
    Bool(bool),
    /// The literal, as written (JSON has no leading zeros, so it is Python's `str()` but `-0`).
    Int(String),
    Float(f64),
    /// The decoded text; a lone surrogate escape comes out as U+FFFD.
    Str(String),
    /// An array or an object, as written (at most [`COMPOUND_SHOWN`] bytes of it): upstream
    /// cannot use one as a state (its pass crashes, unless multiplexing spares a named
    /// profile the comparison, and then it prints Python's `repr`).
    Compound(String),
}

impl Py {
    /// What Python's `str()` prints for the value (upstream's `prior_state=` field).
    pub fn python_str(&self) -> String {
        match self {
            Py::Null => "None".into(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::Int(s) if s == "-0" => "0".into(),
            Py::Int(s) => s.clone(),
            Py::Float(f) => float_repr(*f),
            Py::Str(s) => s.clone(),
            Py::Compound(text) => text.clone(),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back the same, positional for
/// exponents from -4 to 15, else `d.ddde+XX`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f.abs()); // shortest round-trip digits: "1.5e-7"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        return format!("{sign}{body}");
    }
    let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
    format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// The members of the top-level object, in order (a repeated key appears twice: the last one
/// is Python's). `Err` says why Python would not have a dict here.
pub fn top_level_members(data: &[u8]) -> Result<Vec<(String, Py)>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("is not UTF-8 ({e})"))?;
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.ws();
    if p.s[p.i..].starts_with("\u{feff}".as_bytes()) {
        return Err("starts with a UTF-8 BOM, which the JSON reader refuses".into());
    }
    let members = match p.peek() {
        Some(b'{') => p.document()?,
        Some(_) => {
            p.value_skipping()?;
            p.end()?;
            return Err("is not a JSON object".into());
        }
        None => return Err(p.err("expected a value")),
    };
    p.end()?;
    Ok(members)
}

/// How much of an array or object value is kept to be shown (a log value shows 96 bytes).
pub const COMPOUND_SHOWN: usize = 128;

fn is_char_boundary(s: &[u8], i: usize) -> bool {
    i >= s.len() || (s[i] as i8) >= -0x40
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

enum Frame {
    Object,
    Array,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("is not valid JSON ({what} at byte {})", self.i)
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn end(&mut self) -> Result<(), String> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(self.err("extra data"))
        }
    }
    fn literal(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// The top-level object: its members' scalars kept, nested values only walked.
    fn document(&mut self) -> Result<Vec<(String, Py)>, String> {
        self.i += 1; // '{'
        let mut members = Vec::new();
        self.ws();
        if self.eat(b'}') {
            return Ok(members);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a property name in double quotes"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return Err(self.err("expected ':'"));
            }
            self.ws();
            let value = match self.peek() {
                Some(b'{' | b'[') => {
                    let start = self.i;
                    self.value_skipping()?;
                    let mut end = self.i.min(start + COMPOUND_SHOWN);
                    while !is_char_boundary(self.s, end) {
                        end -= 1;
                    }
                    Py::Compound(std::str::from_utf8(&self.s[start..end]).expect("valid UTF-8 cut at a boundary").to_string())
                }
                _ => self.scalar()?,
            };
            members.push((key, value));
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(members);
            }
            return Err(self.err("expected ',' or '}'"));
        }
    }

    /// Any value, nested to any depth, without recursion.
    fn value_skipping(&mut self) -> Result<(), String> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // A value starts here.
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b'}') {
                        stack.push(Frame::Object);
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b']') {
                        stack.push(Frame::Array);
                        continue;
                    }
                }
                _ => {
                    self.scalar()?;
                }
            }
            // A value ended: close what it completes.
            loop {
                self.ws();
                match stack.last() {
                    None => return Ok(()),
                    Some(Frame::Object) => {
                        if self.eat(b',') {
                            self.ws();
                            self.key()?;
                            break;
                        }
                        if !self.eat(b'}') {
                            return Err(self.err("expected ',' or '}'"));
                        }
                    }
                    Some(Frame::Array) => {
                        if self.eat(b',') {
                            break;
                        }
                        if !self.eat(b']') {
                            return Err(self.err("expected ',' or ']'"));
                        }
                    }
                }
                stack.pop();
            }
        }
    }

    /// `"name" :` inside an object being skipped.
    fn key(&mut self) -> Result<(), String> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a property name in double quotes"));
        }
        self.string()?;
        self.ws();
        if self.eat(b':') {
            Ok(())
        } else {
            Err(self.err("expected ':'"))
        }
    }

    fn scalar(&mut self) -> Result<Py, String> {
        match self.peek() {
            Some(b'"') => Ok(Py::Str(self.string()?)),
            Some(b'n') if self.literal("null") => Ok(Py::Null),
            Some(b't') if self.literal("true") => Ok(Py::Bool(true)),
            Some(b'f') if self.literal("false") => Ok(Py::Bool(false)),
            Some(b'N') if self.literal("NaN") => Ok(Py::Float(f64::NAN)),
            Some(b'I') if self.literal("Infinity") => Ok(Py::Float(f64::INFINITY)),
            Some(b'-') if self.s[self.i..].starts_with(b"-Infinity") => {
                self.i += 9;
                Ok(Py::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python's scanner matches it (an
    /// incomplete fraction or exponent is left for the caller to refuse).
    fn number(&mut self) -> Result<Py, String> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - from
        };
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err("expected a value")),
        }
        let mut float = false;
        if self.peek() == Some(b'.') && matches!(self.s.get(self.i + 1), Some(b'0'..=b'9')) {
            self.i += 1;
            digits(self);
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                self.i = save;
            } else {
                float = true;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
        if float {
            Ok(Py::Float(text.parse().map_err(|_| self.err("a number out of form"))?))
        } else {
            Ok(Py::Int(text.to_string()))
        }
    }

    /// A string (the opening quote is next): escapes decoded, a surrogate pair joined, a lone
    /// surrogate kept as U+FFFD; a raw control character refused, as Python's strict mode does.
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).expect("whole characters of valid UTF-8"));
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.err("an unterminated string"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err("an invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("a control character in a string")),
                None => return Err(self.err("an unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("an invalid \\u escape"))?;
        let v =
            std::str::from_utf8(h).ok().filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit())).and_then(|t| u32::from_str_radix(t, 16).ok());
        let v = v.ok_or_else(|| self.err("an invalid \\u escape"))?;
        self.i += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(doc: &str, key: &str) -> Result<Option<Py>, String> {
        Ok(top_level_members(doc.as_bytes())?.into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    #[test]
    fn reads_what_python_reads() {
        let ok = |d: &str| get(d, "desired_state").unwrap_or_else(|e| panic!("{}: {e}", &d[..d.len().min(200)]));
        assert_eq!(ok(r#"{"desired_state": "running", "x": NaN}"#), Some(Py::Str("running".into())));
        assert_eq!(ok(r#"{"x": -Infinity, "desired_state": Infinity}"#), Some(Py::Float(f64::INFINITY)));
        assert_eq!(ok(r#"{"n": 1e400, "m": 123456789012345678901234567890123, "desired_state": null}"#), Some(Py::Null));
        assert_eq!(ok(r#"{"desired_state": "stopped", "desired_state": "\u0072unning"}"#), Some(Py::Str("running".into())));
        assert_eq!(ok(r#"{"desired_state": "running", "x": "\ud800"}"#), Some(Py::Str("running".into())));
        assert_eq!(ok(" {\"desired_state\": [1, {\"a\": []}]} \n"), Some(Py::Compound("[1, {\"a\": []}]".into())));
        let deep = format!("{{\"desired_state\": \"running\", \"x\": {}1{}}}", "[{\"k\": ".repeat(100_000), "}]".repeat(100_000));
        assert_eq!(ok(&deep), Some(Py::Str("running".into())));
        assert_eq!(ok(r#"{"desired_state": "\ud83d\ude00"}"#), Some(Py::Str("\u{1F600}".into())));
    }

    #[test]
    fn refuses_what_python_refuses() {
        for bad in [
            "\u{feff}{\"desired_state\": \"running\"}",
            r#"{"desired_state": "running",}"#,
            r#"{'desired_state': 'running'}"#,
            "{\"desired_state\": \"run\tning\"}",
            r#"{"x": 01}"#,
            r#"{"x": -NaN}"#,
            r#"{"x": 1.}"#,
            r#"{"x": [1,]}"#,
            r#"{} x"#,
            "",
            r#"{"x": "\x"}"#,
            r#"{"x": "\u12"}"#,
            r#"{"x": [1 2]}"#,
        ] {
            assert!(top_level_members(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(top_level_members(b"[]").unwrap_err().contains("not a JSON object"));
        assert!(top_level_members(b"{\"x\": \"caf\xe9\"}").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn values_print_as_python_prints_them() {
        let cases: &[(f64, &str)] = &[
            (1e20, "1e+20"),
            (1e-7, "1e-07"),
            (1.5, "1.5"),
            (100000.0, "100000.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
            (123.456, "123.456"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(*f), *want, "{f}");
        }
        assert_eq!(Py::Bool(true).python_str(), "True");
        assert_eq!(Py::Int("-0".into()).python_str(), "0");
        assert_eq!(Py::Int("123456789012345678901234567890".into()).python_str(), "123456789012345678901234567890");
    }
}
