//! A zero-copy JSON scanner for one log line, for the JSON rule matcher.
//!
//! The matcher runs it only on lines that passed the literal prefilter, then
//! tests fields by dotted path ([`path_is`]) or "any string value". So the
//! scanner builds no tree: it walks the line once and hands every scalar
//! leaf to a visitor, with the path of keys and array indices that leads to
//! it, in document order.
//!
//! Every byte of the line is attacker-controlled. The walk is therefore a
//! loop over an explicit stack rather than recursion, bounded by [`Limits`]
//! in depth and in the number of values; it never panics; and it allocates
//! only for strings (keys or values) that contain escapes or invalid UTF-8.

use std::borrow::Cow;

/// One step of the path from the line's object to a leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg<'a> {
    /// An object member, by its unescaped key: borrowed from the line unless
    /// the key had escapes or invalid UTF-8.
    Key(Cow<'a, str>),
    /// An array element, by its position from 0.
    Index(usize),
}

impl PathSeg<'_> {
    /// The same segment, owning its key, for a caller that keeps a path
    /// beyond the line it came from.
    pub fn into_owned(self) -> PathSeg<'static> {
        match self {
            PathSeg::Key(key) => PathSeg::Key(Cow::Owned(key.into_owned())),
            PathSeg::Index(i) => PathSeg::Index(i),
        }
    }
}

/// A leaf value, as the visitor receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// A string, unescaped: borrowed from the line when it has no escapes
    /// and is valid UTF-8; invalid bytes become U+FFFD.
    Str(Cow<'a, str>),
    /// A number exactly as written, e.g. `-1.5e3`. Its grammar is checked,
    /// its value is not converted: callers parse only the numbers they use,
    /// into the type they need, without losing precision here.
    Num(&'a str),
    Bool(bool),
    Null,
    /// Not a scalar: an object or an array starts at this path (its members
    /// follow as leaves of their own). It tells a caller that a field is
    /// there, with a value that is no scalar: `{"ip":"1.2.3.4","ip":[…]}`
    /// names `ip` twice.
    Compound,
}

/// Bounds on the work and memory one line may cost.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How deeply objects and arrays may nest; the line's own object is
    /// depth 1, so 1 allows only scalar members.
    pub max_depth: usize,
    /// How many values the line may hold: every member and element counts,
    /// scalars, objects and arrays alike (the line's own object does not).
    /// Empty containers count too, since they cost work without leaves.
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_values: 1024,
        }
    }
}

/// Why a line is not one acceptable JSON object.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The first byte after leading blanks is not `{` (or there is none).
    #[error("not a JSON object")]
    NotAnObject,
    /// The JSON is malformed at this byte offset; an offset equal to the
    /// line's length means the line ended too early.
    #[error("JSON syntax error at byte {offset}")]
    Syntax { offset: usize },
    /// Objects and arrays nest deeper than [`Limits::max_depth`].
    #[error("JSON nests deeper than the limit")]
    TooDeep,
    /// The line holds more than [`Limits::max_values`] values.
    #[error("JSON holds more values than the limit")]
    TooManyValues,
    /// Something other than blanks follows the object, at this offset.
    #[error("data after the JSON object at byte {offset}")]
    Trailing { offset: usize },
}

/// What the visitor wants next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// End the walk now; [`Scanner::scan`] then returns `Ok(())` without
    /// looking at the rest of the line.
    Stop,
}

/// The kind of an open container, one per nesting level.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

/// Where the walk is between tokens.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// A value must come next; its path segment is already pushed.
    Value,
    /// Just after `{`: a key or `}` must come next.
    FirstMember,
    /// Just after `[`: a value or `]` must come next.
    FirstElement,
    /// A value just ended: `,` or the innermost container's close must come
    /// next, or the object is complete when no container is open.
    AfterValue,
}

/// Reusable scanner: keeps its path stack between lines so a scan allocates
/// nothing for borrowed keys.
///
/// # Lifetimes
///
/// The path handed to the visitor holds keys borrowed from the current line,
/// `PathSeg<'a>`, while the scanner outlives every line. The scanner keeps
/// only the *allocation*: `path_buf` is a `Vec<PathSeg<'static>>` that is
/// always empty between scans. `scan` takes it out and uses it as a
/// `Vec<PathSeg<'a>>`, which is plain subtyping (`Vec` is covariant and
/// `'static: 'a`). To give it back it clears the vector and converts it with
/// an `into_iter().map(PathSeg::into_owned).collect()` whose closure never
/// runs on an empty vector: std collects a `vec::IntoIter` into a `Vec` of
/// an element type with the same layout in place, so the capacity survives
/// (a test pins this). That reuse is an
/// optimisation std does, not a documented guarantee; if it ever stopped,
/// the next scan would allocate again, and nothing would be unsound. No
/// `unsafe` is involved.
#[derive(Debug)]
pub struct Scanner {
    limits: Limits,
    /// Empty between scans; only its capacity matters (see above).
    path_buf: Vec<PathSeg<'static>>,
    /// The open containers, innermost last; cleared at each scan.
    frames: Vec<Container>,
}

impl Scanner {
    /// A scanner that enforces `limits` on every line it scans.
    pub fn new(limits: Limits) -> Scanner {
        Scanner {
            limits,
            path_buf: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Walks `line` — exactly one JSON object, optional surrounding
    /// whitespace (spaces, tabs, and one trailing `\r`) — and calls
    /// `visit(path, value)` for every scalar leaf, in document order.
    ///
    /// Arrays are walked too ([`PathSeg::Index`]). Every occurrence of a
    /// duplicate key is visited, as it comes; what duplicates mean is the
    /// caller's decision. Between tokens inside the object, all four JSON
    /// whitespace bytes are allowed; strings follow strict JSON (raw control
    /// bytes are an error) except that invalid UTF-8 is replaced rather
    /// than rejected, and a lone surrogate escape becomes U+FFFD.
    ///
    /// Returns `Err` on any syntax error, on exceeding the [`Limits`], or on
    /// trailing data. If `visit` returns [`Flow::Stop`], the walk ends there
    /// and `scan` returns `Ok(())` without checking the rest of the line.
    ///
    /// **Contract:** the visitor may be called for leaves *before* an error
    /// is detected later in the line (the scanner reads the line once and
    /// does not validate it first). Callers must act on what they collected
    /// only when `scan` returns `Ok`.
    pub fn scan<'a>(
        &mut self,
        line: &'a [u8],
        mut visit: impl FnMut(&[PathSeg<'a>], Scalar<'a>) -> Flow,
    ) -> Result<(), ScanError> {
        // Covariance: an empty Vec<PathSeg<'static>> is a Vec<PathSeg<'a>>.
        let mut path: Vec<PathSeg<'a>> = std::mem::take(&mut self.path_buf);
        self.frames.clear();
        let result = walk(line, self.limits, &mut self.frames, &mut path, &mut visit);
        self.path_buf = recycle(path);
        result
    }
}

/// Empties `path` and returns its allocation under the `'static` type (see
/// [`Scanner`] for why this is sound and why it keeps the capacity).
fn recycle(mut path: Vec<PathSeg<'_>>) -> Vec<PathSeg<'static>> {
    path.clear();
    // The vector is empty, so `into_owned` never runs; it only names the
    // element type the collect produces.
    path.into_iter().map(PathSeg::into_owned).collect()
}

/// The walk itself: one loop, one state, explicit stacks.
///
/// Invariant in `Value` and `AfterValue`: `path.len() == frames.len()`
/// while any container is open, i.e. `path[i]` is the segment of the
/// current element of `frames[i]`, and the line's own object (`frames[0]`)
/// has no segment of its own.
fn walk<'a, F>(
    line: &'a [u8],
    limits: Limits,
    frames: &mut Vec<Container>,
    path: &mut Vec<PathSeg<'a>>,
    visit: &mut F,
) -> Result<(), ScanError>
where
    F: FnMut(&[PathSeg<'a>], Scalar<'a>) -> Flow,
{
    // The line as text when it is valid UTF-8 (almost always): checked
    // once here rather than string by string.
    let text = std::str::from_utf8(line).ok();
    let mut pos = skip_blanks(line, 0);
    if line.get(pos) != Some(&b'{') {
        return Err(ScanError::NotAnObject);
    }
    open(frames, Container::Object, limits)?;
    pos += 1;
    let mut values = 0usize;
    let mut state = State::FirstMember;

    loop {
        state = match state {
            State::Value => {
                pos = skip_ws(line, pos);
                values += 1;
                if values > limits.max_values {
                    return Err(ScanError::TooManyValues);
                }
                let scalar = match line.get(pos) {
                    Some(b'{' | b'[') if visit(path, Scalar::Compound) == Flow::Stop => {
                        return Ok(());
                    }
                    Some(b'{') => {
                        open(frames, Container::Object, limits)?;
                        pos += 1;
                        state = State::FirstMember;
                        continue;
                    }
                    Some(b'[') => {
                        open(frames, Container::Array, limits)?;
                        pos += 1;
                        state = State::FirstElement;
                        continue;
                    }
                    Some(b'"') => {
                        let (s, end) = string_at(line, text, pos + 1)?;
                        pos = end;
                        Scalar::Str(s)
                    }
                    Some(b'-' | b'0'..=b'9') => {
                        let end = number_end(line, pos)?;
                        // The grammar admits only ASCII, so this cannot fail;
                        // it is checked rather than assumed all the same.
                        let text = line
                            .get(pos..end)
                            .and_then(|b| std::str::from_utf8(b).ok())
                            .ok_or(ScanError::Syntax { offset: pos })?;
                        pos = end;
                        Scalar::Num(text)
                    }
                    Some(b't') => {
                        pos = literal_end(line, pos, b"true")?;
                        Scalar::Bool(true)
                    }
                    Some(b'f') => {
                        pos = literal_end(line, pos, b"false")?;
                        Scalar::Bool(false)
                    }
                    Some(b'n') => {
                        pos = literal_end(line, pos, b"null")?;
                        Scalar::Null
                    }
                    _ => return Err(syntax(line, pos)),
                };
                if visit(path, scalar) == Flow::Stop {
                    return Ok(());
                }
                State::AfterValue
            }
            State::FirstMember => {
                pos = skip_ws(line, pos);
                if line.get(pos) == Some(&b'}') {
                    frames.pop();
                    pos += 1;
                    State::AfterValue
                } else {
                    pos = member_key(line, text, pos, path)?;
                    State::Value
                }
            }
            State::FirstElement => {
                pos = skip_ws(line, pos);
                if line.get(pos) == Some(&b']') {
                    frames.pop();
                    pos += 1;
                    State::AfterValue
                } else {
                    path.push(PathSeg::Index(0));
                    State::Value
                }
            }
            State::AfterValue => {
                // Checked before skipping whitespace: outside the object
                // only blanks are allowed, not all JSON whitespace.
                let Some(&top) = frames.last() else {
                    break;
                };
                pos = skip_ws(line, pos);
                match (top, line.get(pos)) {
                    (Container::Object, Some(b',')) => {
                        path.pop();
                        pos = member_key(line, text, skip_ws(line, pos + 1), path)?;
                        State::Value
                    }
                    (Container::Array, Some(b',')) => {
                        if let Some(PathSeg::Index(i)) = path.last_mut() {
                            *i += 1;
                        }
                        pos += 1;
                        State::Value
                    }
                    (Container::Object, Some(b'}')) | (Container::Array, Some(b']')) => {
                        path.pop();
                        frames.pop();
                        pos += 1;
                        State::AfterValue
                    }
                    _ => return Err(syntax(line, pos)),
                }
            }
        };
    }

    let end = skip_blanks(line, pos);
    match &line[end.min(line.len())..] {
        [] | [b'\r'] => Ok(()),
        _ => Err(ScanError::Trailing { offset: end }),
    }
}

/// Opens a container, if the depth limit allows it.
fn open(frames: &mut Vec<Container>, kind: Container, limits: Limits) -> Result<(), ScanError> {
    if frames.len() >= limits.max_depth {
        return Err(ScanError::TooDeep);
    }
    frames.push(kind);
    Ok(())
}

/// Reads `"key"` and `:` at `pos` (whitespace allowed before the colon) and
/// pushes the key on `path`; returns the offset after the colon.
fn member_key<'a>(
    line: &'a [u8],
    text: Option<&'a str>,
    pos: usize,
    path: &mut Vec<PathSeg<'a>>,
) -> Result<usize, ScanError> {
    if line.get(pos) != Some(&b'"') {
        return Err(syntax(line, pos));
    }
    let (key, end) = string_at(line, text, pos + 1)?;
    let colon = skip_ws(line, end);
    if line.get(colon) != Some(&b':') {
        return Err(syntax(line, colon));
    }
    path.push(PathSeg::Key(key));
    Ok(colon + 1)
}

/// A syntax error at `pos`, which may be the end of the line.
fn syntax(line: &[u8], pos: usize) -> ScanError {
    ScanError::Syntax {
        offset: pos.min(line.len()),
    }
}

/// Skips JSON whitespace (space, tab, LF, CR) from `pos`.
fn skip_ws(line: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = line.get(pos) {
        pos += 1;
    }
    pos
}

/// Skips the blanks allowed around the object (space, tab) from `pos`.
fn skip_blanks(line: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t') = line.get(pos) {
        pos += 1;
    }
    pos
}

/// Checks that `word` is at `pos`; returns the offset after it.
fn literal_end(line: &[u8], pos: usize, word: &[u8]) -> Result<usize, ScanError> {
    for (i, &w) in word.iter().enumerate() {
        if line.get(pos + i) != Some(&w) {
            return Err(syntax(line, pos + i));
        }
    }
    Ok(pos + word.len())
}

/// Checks the JSON number grammar at `start`:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`,
/// and returns the offset after the number. What follows it is the
/// caller's business (`01` fails there, at the `1`).
fn number_end(line: &[u8], start: usize) -> Result<usize, ScanError> {
    let mut pos = start;
    if line.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match line.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digits_end(line, pos + 1),
        _ => return Err(syntax(line, pos)),
    }
    if line.get(pos) == Some(&b'.') {
        pos = some_digits_end(line, pos + 1)?;
    }
    if let Some(b'e' | b'E') = line.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = line.get(pos) {
            pos += 1;
        }
        pos = some_digits_end(line, pos)?;
    }
    Ok(pos)
}

/// The offset after the run of ASCII digits at `pos` (maybe empty).
fn digits_end(line: &[u8], mut pos: usize) -> usize {
    while let Some(b'0'..=b'9') = line.get(pos) {
        pos += 1;
    }
    pos
}

/// Like [`digits_end`], but at least one digit is required.
fn some_digits_end(line: &[u8], pos: usize) -> Result<usize, ScanError> {
    let end = digits_end(line, pos);
    if end == pos {
        return Err(syntax(line, pos));
    }
    Ok(end)
}

/// Reads a string whose opening quote is just before `start`; returns it
/// unescaped and the offset after its closing quote.
///
/// The common case, no backslash, is one [`stop_at`] and a borrow. With
/// escapes, the string is built in one `String`, run by run.
///
/// `text` is the whole line as text, if it is valid UTF-8.
fn string_at<'a>(
    line: &'a [u8],
    text: Option<&'a str>,
    start: usize,
) -> Result<(Cow<'a, str>, usize), ScanError> {
    let (run, mut pos) = run_at(line, start)?;
    if line.get(pos) == Some(&b'"') {
        // A run starts after a quote and ends at a quote or backslash, all
        // ASCII, so in valid UTF-8 its ends are character boundaries.
        if let Some(s) = text.and_then(|t| t.get(start..pos)) {
            return Ok((Cow::Borrowed(s), pos + 1));
        }
        return Ok((lossy(run), pos + 1));
    }
    let mut out = String::with_capacity(run.len() + 16);
    out.push_str(&String::from_utf8_lossy(run));
    loop {
        // Here `line[pos]` is a backslash.
        pos = unescape_into(line, pos, &mut out)?;
        let (run, end) = run_at(line, pos)?;
        out.push_str(&String::from_utf8_lossy(run));
        pos = end;
        if line.get(pos) == Some(&b'"') {
            return Ok((Cow::Owned(out), pos + 1));
        }
    }
}

/// `bytes` as text, borrowed when valid UTF-8 (the common case, checked
/// by std's fast validator), else with U+FFFD for the invalid parts.
#[inline]
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The raw bytes from `start` up to the next `"` or `\`, and that byte's
/// offset. Raw control bytes in the run are an error (strict JSON), and so
/// is a line that ends first.
fn run_at(line: &[u8], start: usize) -> Result<(&[u8], usize), ScanError> {
    let rest = line.get(start..).unwrap_or_default();
    let Some(len) = stop_at(rest) else {
        return Err(syntax(line, line.len()));
    };
    if rest[len] < 0x20 {
        // A control byte in the run; but a line that ends before any
        // closing quote is reported at its end, as it always was.
        if !rest[len..].iter().any(|&b| b == b'"' || b == b'\\') {
            return Err(syntax(line, line.len()));
        }
        return Err(syntax(line, start + len));
    }
    Ok((&rest[..len], start + len))
}

/// The offset of the first `"`, `\` or control byte (below 0x20) in `s`.
///
/// Strings in log lines are short (keys, levels, addresses), where a
/// vectorised `memchr2` spends more on setting up than on searching, and
/// it needed a second pass for the control bytes. This reads eight bytes
/// at a time as a `u64` and flags the bytes that are `"` or `\` (they
/// become zero after an XOR) or below 0x20, with the classic
/// "has a zero byte" arithmetic. A borrow can flag a byte above a flagged
/// one, never below, so the lowest flag is exact.
#[inline]
fn stop_at(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let w = u64::from_le_bytes(bytes);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let flags = flags & HIGH;
        if flags != 0 {
            return Some(i + (flags.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| i + p)
}

/// Decodes the escape whose backslash is at `pos` into `out`; returns the
/// offset after it (after both halves of a surrogate pair).
fn unescape_into(line: &[u8], pos: usize, out: &mut String) -> Result<usize, ScanError> {
    let ch = match line.get(pos + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let unit = hex4(line, pos + 2)?;
            let mut end = pos + 6;
            let ch = match unit {
                0xD800..=0xDBFF => match low_surrogate_at(line, end) {
                    Some(low) => {
                        end += 6;
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                    // A high surrogate not followed by a low one: whatever
                    // follows is read on its own.
                    None => char::REPLACEMENT_CHARACTER,
                },
                _ => char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
            };
            out.push(ch);
            return Ok(end);
        }
        _ => return Err(syntax(line, pos + 1)),
    };
    out.push(ch);
    Ok(pos + 2)
}

/// The low surrogate escaped as `\uXXXX` at `pos`, if that is what is there.
fn low_surrogate_at(line: &[u8], pos: usize) -> Option<u16> {
    if line.get(pos..pos + 2) != Some(b"\\u") {
        return None;
    }
    match hex4(line, pos + 2) {
        Ok(unit @ 0xDC00..=0xDFFF) => Some(unit),
        _ => None,
    }
}

/// The four hex digits at `pos`, as a UTF-16 code unit.
fn hex4(line: &[u8], pos: usize) -> Result<u16, ScanError> {
    let mut unit = 0u16;
    for i in 0..4 {
        let digit = line
            .get(pos + i)
            .and_then(|&b| char::from(b).to_digit(16))
            .ok_or_else(|| syntax(line, pos + i))?;
        // Four digits of at most 15 fit in a u16.
        unit = (unit << 4) | digit as u16;
    }
    Ok(unit)
}

/// The length of `path` written as a dotted path (`a.b` is 3), or `None`
/// if it holds an array index, which no dotted path names. A path can be
/// [`path_is`] a dotted path only if their lengths are equal: a cheap test
/// to run first when one leaf is compared with many paths.
#[inline]
pub fn dotted_len(path: &[PathSeg<'_>]) -> Option<usize> {
    let mut n = path.len().checked_sub(1)?;
    for seg in path {
        match seg {
            PathSeg::Key(k) => n += k.len(),
            PathSeg::Index(_) => return None,
        }
    }
    Some(n)
}

/// True if `path` is exactly the dotted path `dotted` (keys separated by
/// '.'; an array index never matches a key segment).
///
/// So `path_is(p, "error.message")` holds for `{"error":{"message":…}}` but
/// not for `{"error":[{"message":…}]}`, nor for a key that itself contains a
/// dot, which no dotted path can name. An empty path matches nothing.
#[inline]
pub fn path_is(path: &[PathSeg<'_>], dotted: &str) -> bool {
    // It runs for every leaf and every field a rule names, so it compares
    // bytes in place rather than splitting `dotted` (which cost a third of
    // the JSON matcher's time): each key must be the next part of `dotted`,
    // followed by a '.' unless it is the last, and contain no '.' itself.
    // Lengths and first bytes settle almost every call before any
    // comparison of whole keys. Most leaves are members of the line's own
    // object: one key, compared whole.
    if let [PathSeg::Key(key)] = path {
        let (key, dotted) = (key.as_bytes(), dotted.as_bytes());
        return key.len() == dotted.len()
            && key.first() == dotted.first()
            && key == dotted
            && !key.contains(&b'.');
    }
    if path.is_empty() {
        return false;
    }
    let mut rest = dotted.as_bytes();
    let last = path.len() - 1;
    for (i, seg) in path.iter().enumerate() {
        let PathSeg::Key(key) = seg else {
            return false;
        };
        let key = key.as_bytes();
        let fits = if i == last {
            rest.len() == key.len()
        } else {
            rest.len() > key.len() && rest[key.len()] == b'.'
        };
        if !fits || &rest[..key.len()] != key || key.contains(&b'.') {
            return false;
        }
        rest = &rest[(key.len() + usize::from(i != last)).min(rest.len())..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use serde_json::Value;

    /// A leaf as the tests keep it, outliving the line.
    #[derive(Clone, Debug, PartialEq)]
    enum Leaf {
        Str(String),
        Num(String),
        Bool(bool),
        Null,
    }

    /// The leaf a visit reports; `None` for the start of an object or array.
    fn leaf_of(s: Scalar<'_>) -> Option<Leaf> {
        Some(match s {
            Scalar::Str(s) => Leaf::Str(s.into_owned()),
            Scalar::Num(n) => Leaf::Num(n.to_owned()),
            Scalar::Bool(b) => Leaf::Bool(b),
            Scalar::Null => Leaf::Null,
            Scalar::Compound => return None,
        })
    }

    fn owned_path(path: &[PathSeg<'_>]) -> Vec<PathSeg<'static>> {
        path.iter().cloned().map(PathSeg::into_owned).collect()
    }

    /// Renders a path as `a.b[2].c`, for readable expectations.
    fn render(path: &[PathSeg<'_>]) -> String {
        let mut out = String::new();
        for seg in path {
            match seg {
                PathSeg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn scan_with(limits: Limits, line: &[u8]) -> Result<Vec<(String, Leaf)>, ScanError> {
        let mut leaves = Vec::new();
        Scanner::new(limits).scan(line, |path, value| {
            if let Some(leaf) = leaf_of(value) {
                leaves.push((render(path), leaf));
            }
            Flow::Continue
        })?;
        Ok(leaves)
    }

    fn scan(line: &str) -> Result<Vec<(String, Leaf)>, ScanError> {
        scan_with(Limits::default(), line.as_bytes())
    }

    fn str_leaf(path: &str, s: &str) -> (String, Leaf) {
        (path.to_owned(), Leaf::Str(s.to_owned()))
    }

    fn num_leaf(path: &str, n: &str) -> (String, Leaf) {
        (path.to_owned(), Leaf::Num(n.to_owned()))
    }

    /// The one string value of `{"s":<json>}`, and whether it was borrowed.
    fn one_string(json: &str) -> Result<(String, bool), ScanError> {
        let line = format!(r#"{{"s":{json}}}"#);
        let mut got = None;
        Scanner::new(Limits::default()).scan(line.as_bytes(), |_, value| {
            if let Scalar::Str(s) = value {
                got = Some((s.to_string(), matches!(s, Cow::Borrowed(_))));
            }
            Flow::Continue
        })?;
        got.ok_or(ScanError::NotAnObject)
    }

    const LOG_LINE: &str = r#"{"ts":"2024-05-01T12:34:56Z","level":"warn","msg":"Signature verification failed","client_ip":"203.0.113.7","req":{"path":"/api/v1/me","headers":{"user-agent":"curl/8.0"}}}"#;

    #[test]
    fn realistic_log_line() {
        assert_eq!(
            scan(LOG_LINE).unwrap(),
            vec![
                str_leaf("ts", "2024-05-01T12:34:56Z"),
                str_leaf("level", "warn"),
                str_leaf("msg", "Signature verification failed"),
                str_leaf("client_ip", "203.0.113.7"),
                str_leaf("req.path", "/api/v1/me"),
                str_leaf("req.headers.user-agent", "curl/8.0"),
            ]
        );
    }

    #[test]
    fn every_strict_prefix_of_a_log_line_is_an_error() {
        let line = LOG_LINE.as_bytes();
        for len in 0..line.len() {
            let result = scan_with(Limits::default(), &line[..len]);
            assert!(result.is_err(), "prefix of {len} bytes: {result:?}");
        }
    }

    #[test]
    fn each_kind_of_scalar() {
        assert_eq!(
            scan(r#"{"s":"x","i":-12,"f":0.5e-3,"t":true,"n":false,"z":null,"e":""}"#).unwrap(),
            vec![
                str_leaf("s", "x"),
                num_leaf("i", "-12"),
                num_leaf("f", "0.5e-3"),
                ("t".into(), Leaf::Bool(true)),
                ("n".into(), Leaf::Bool(false)),
                ("z".into(), Leaf::Null),
                str_leaf("e", ""),
            ]
        );
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for good in [
            "0",
            "-0",
            "7",
            "10",
            "-1.25",
            "1e5",
            "1E+5",
            "1e-05",
            "0.0",
            "123456789012345678901234567890",
        ] {
            assert_eq!(
                scan(&format!(r#"{{"n":{good}}}"#)).unwrap(),
                vec![num_leaf("n", good)],
                "{good}"
            );
        }
        for bad in [
            "01", "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "--1", "0x10", "1_0", "NaN",
            "Infinity", "-.5", "1.5.5",
        ] {
            let result = scan(&format!(r#"{{"n":{bad}}}"#));
            assert!(
                matches!(result, Err(ScanError::Syntax { .. })),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn literals_must_be_exact() {
        for bad in [
            "tru", "truee", "True", "nul", "nulll", "fals", "falsey", "t",
        ] {
            let result = scan(&format!(r#"{{"v":{bad}}}"#));
            assert!(
                matches!(result, Err(ScanError::Syntax { .. })),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn plain_strings_are_borrowed_and_escaped_ones_owned() {
        assert_eq!(
            one_string(r#""plain ünïcode""#).unwrap(),
            ("plain ünïcode".into(), true)
        );
        assert_eq!(one_string(r#""a\nb""#).unwrap(), ("a\nb".into(), false));
    }

    #[test]
    fn every_short_escape() {
        assert_eq!(
            one_string(r#""\" \\ \/ \b \f \n \r \t""#).unwrap().0,
            "\" \\ / \u{8} \u{c} \n \r \t"
        );
        assert_eq!(one_string(r#""\\""#).unwrap().0, "\\");
        assert_eq!(one_string(r#""x\"""#).unwrap().0, "x\"");
    }

    #[test]
    fn unknown_and_truncated_escapes_are_errors() {
        for bad in [
            r#""\x""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""\"#,
            r#""\u"#,
            r#""\'""#,
        ] {
            assert!(
                matches!(one_string(bad), Err(ScanError::Syntax { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        assert_eq!(one_string(r#""\u0041\u00e9\u20AC""#).unwrap().0, "Aé€");
        assert_eq!(one_string(r#""\ud83d\ude00!""#).unwrap().0, "😀!");
        assert_eq!(one_string(r#""\uD83D\uDE00""#).unwrap().0, "😀");
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        // A lone high surrogate, at the end and before other text.
        assert_eq!(one_string(r#""\ud800""#).unwrap().0, "\u{FFFD}");
        assert_eq!(one_string(r#""\ud800x""#).unwrap().0, "\u{FFFD}x");
        // A lone low surrogate.
        assert_eq!(one_string(r#""\udc00""#).unwrap().0, "\u{FFFD}");
        // A high surrogate followed by an escape that is not a low one: that
        // escape still counts on its own.
        assert_eq!(one_string(r#""\ud800\u0041""#).unwrap().0, "\u{FFFD}A");
        assert_eq!(one_string(r#""\ud800\n""#).unwrap().0, "\u{FFFD}\n");
        // Two highs then a low: one replacement, then a pair.
        assert_eq!(
            one_string(r#""\ud800\ud83d\ude00""#).unwrap().0,
            "\u{FFFD}😀"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let mut line = b"{\"k\xff\":\"a".to_vec();
        line.extend_from_slice(b"\xc3\x28\\nb\xe2\x82\"}");
        let mut seen = Vec::new();
        Scanner::new(Limits::default())
            .scan(&line, |path, value| {
                if let Some(leaf) = leaf_of(value) {
                    seen.push((render(path), leaf));
                }
                Flow::Continue
            })
            .unwrap();
        assert_eq!(seen, vec![str_leaf("k\u{FFFD}", "a\u{FFFD}(\nb\u{FFFD}")]);
    }

    #[test]
    fn raw_control_bytes_in_strings_are_errors() {
        assert_eq!(
            scan("{\"a\":\"x\ty\"}"),
            Err(ScanError::Syntax { offset: 7 })
        );
        assert_eq!(
            scan("{\"a\\n\":\"x\\ny\nz\"}"),
            Err(ScanError::Syntax { offset: 12 })
        );
        assert!(scan("{\"a\u{1}\":1}").is_err());
        // DEL is not a control byte for JSON.
        assert_eq!(
            scan("{\"a\":\"\u{7f}\"}").unwrap(),
            vec![str_leaf("a", "\u{7f}")]
        );
    }

    #[test]
    fn escaped_keys() {
        assert_eq!(
            scan(r#"{"a\u002eb":{"c\"d":1}}"#).unwrap(),
            vec![num_leaf("a.b.c\"d", "1")]
        );
    }

    #[test]
    fn nesting_and_arrays() {
        assert_eq!(
            scan(r#"{"a":{"b":[1,{"c":"x"},[true,null],[],{}],"d":2},"e":[[]]}"#).unwrap(),
            vec![
                num_leaf("a.b[0]", "1"),
                str_leaf("a.b[1].c", "x"),
                ("a.b[2][0]".into(), Leaf::Bool(true)),
                ("a.b[2][1]".into(), Leaf::Null),
                num_leaf("a.d", "2"),
            ]
        );
        assert_eq!(scan("{}").unwrap(), vec![]);
    }

    #[test]
    fn empty_containers_give_no_leaves() {
        assert_eq!(scan(r#"{"a":{},"b":[],"c":[{},[]]}"#).unwrap(), vec![]);
    }

    #[test]
    fn duplicate_keys_are_each_visited() {
        assert_eq!(
            scan(r#"{"ip":"1.2.3.4","ip":"5.6.7.8","o":{"k":1},"o":{"k":2}}"#).unwrap(),
            vec![
                str_leaf("ip", "1.2.3.4"),
                str_leaf("ip", "5.6.7.8"),
                num_leaf("o.k", "1"),
                num_leaf("o.k", "2"),
            ]
        );
    }

    #[test]
    fn whitespace_inside_and_around() {
        let expected = vec![num_leaf("a[0]", "1"), str_leaf("b", "x")];
        assert_eq!(
            scan(" \t{ \"a\" :\n[ 1 \r\n] ,\t\"b\":\"x\" } \t").unwrap(),
            expected
        );
        assert_eq!(scan("{\"a\":[1],\"b\":\"x\"}\r").unwrap(), expected);
        assert_eq!(scan("{\"a\":[1],\"b\":\"x\"} \t\r").unwrap(), expected);
        assert_eq!(scan("{ }").unwrap(), vec![]);
        assert_eq!(scan("{\n}").unwrap(), vec![]);
    }

    #[test]
    fn outside_the_object_only_blanks_and_one_final_cr() {
        assert_eq!(scan("{}\r\r"), Err(ScanError::Trailing { offset: 2 }));
        assert_eq!(scan("{}\n"), Err(ScanError::Trailing { offset: 2 }));
        assert_eq!(scan("{}\r "), Err(ScanError::Trailing { offset: 2 }));
        assert_eq!(scan("{} x"), Err(ScanError::Trailing { offset: 3 }));
        assert_eq!(scan("{}{}"), Err(ScanError::Trailing { offset: 2 }));
        assert_eq!(scan(r#"{"a":1}}"#), Err(ScanError::Trailing { offset: 7 }));
        assert_eq!(scan("\n{}"), Err(ScanError::NotAnObject));
    }

    #[test]
    fn top_level_must_be_an_object() {
        for line in [
            "", "  ", "[]", r#""x""#, "1", "null", "true", " [{}]", "x{}", "}",
        ] {
            assert_eq!(scan(line), Err(ScanError::NotAnObject), "{line:?}");
        }
    }

    #[test]
    fn structural_syntax_errors() {
        for bad in [
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{a:1}",
            "{'a':1}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":[1,]}",
            "{\"a\":[,1]}",
            "{\"a\":[1}",
            "{\"a\":{]}",
            "{\"a\":1]",
            "{\"a\":\"x}",
            "{\"a\":[1 2]}",
            "{\"a\"::1}",
            "{1:2}",
        ] {
            let result = scan(bad);
            assert!(
                matches!(result, Err(ScanError::Syntax { .. })),
                "{bad:?}: {result:?}"
            );
        }
        assert_eq!(scan(r#"{"a":}"#), Err(ScanError::Syntax { offset: 5 }));
        assert_eq!(scan(r#"{"a":1"#), Err(ScanError::Syntax { offset: 6 }));
    }

    fn nested_objects(depth: usize) -> String {
        // `depth` objects, the line's own included.
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn depth_limit() {
        assert!(scan(&nested_objects(32)).is_ok());
        assert_eq!(scan(&nested_objects(33)), Err(ScanError::TooDeep));
        // Arrays count as levels too: 1 object + 31 arrays is fine, 32 not.
        let arrays = |n: usize| format!(r#"{{"a":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(scan(&arrays(31)).is_ok());
        assert_eq!(scan(&arrays(32)), Err(ScanError::TooDeep));
        let flat = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        assert!(scan_with(flat, br#"{"a":1}"#).is_ok());
        assert_eq!(scan_with(flat, br#"{"a":{}}"#), Err(ScanError::TooDeep));
        let none = Limits {
            max_depth: 0,
            ..Limits::default()
        };
        assert_eq!(scan_with(none, b"{}"), Err(ScanError::TooDeep));
    }

    #[test]
    fn deep_nesting_without_a_limit_does_not_recurse() {
        // No recursion, so even an absurd depth costs heap, not stack.
        let unbounded = Limits {
            max_depth: usize::MAX,
            max_values: usize::MAX,
        };
        let line = format!(r#"{{"a":{}"#, "[".repeat(200_000));
        assert_eq!(
            scan_with(unbounded, line.as_bytes()),
            Err(ScanError::Syntax { offset: line.len() })
        );
    }

    fn flat_members(n: usize) -> String {
        let members: Vec<String> = (0..n).map(|i| format!(r#""k{i}":{i}"#)).collect();
        format!("{{{}}}", members.join(","))
    }

    #[test]
    fn value_limit() {
        assert_eq!(scan(&flat_members(1024)).unwrap().len(), 1024);
        assert_eq!(scan(&flat_members(1025)), Err(ScanError::TooManyValues));
        assert_eq!(scan(&flat_members(10_000)), Err(ScanError::TooManyValues));
        let many = format!(r#"{{"a":[{}]}}"#, vec!["1"; 10_000].join(","));
        assert_eq!(scan(&many), Err(ScanError::TooManyValues));
        // Containers count, even empty ones that hold no leaf.
        let empties = format!(r#"{{"a":[{}]}}"#, vec!["[]"; 10_000].join(","));
        assert_eq!(scan(&empties), Err(ScanError::TooManyValues));
        // The array itself is a value: 1023 elements + 1 array = 1024.
        let at_limit = format!(r#"{{"a":[{}]}}"#, vec!["1"; 1023].join(","));
        assert_eq!(scan(&at_limit).unwrap().len(), 1023);
    }

    #[test]
    fn stop_ends_the_walk_with_ok() {
        let mut seen = Vec::new();
        // The garbage after the first member is never looked at.
        let result =
            Scanner::new(Limits::default()).scan(br#"{"a":1,"b":2 junk"#, |path, value| {
                if let Some(leaf) = leaf_of(value) {
                    seen.push((render(path), leaf));
                }
                Flow::Stop
            });
        assert_eq!(result, Ok(()));
        assert_eq!(seen, vec![num_leaf("a", "1")]);
    }

    #[test]
    fn leaves_before_an_error_are_visited() {
        // The documented contract: callers keep what they saw only on Ok.
        let mut seen = Vec::new();
        let result =
            Scanner::new(Limits::default()).scan(br#"{"ip":"1.2.3.4","b":}"#, |path, value| {
                if let Some(leaf) = leaf_of(value) {
                    seen.push((render(path), leaf));
                }
                Flow::Continue
            });
        assert_eq!(result, Err(ScanError::Syntax { offset: 20 }));
        assert_eq!(seen, vec![str_leaf("ip", "1.2.3.4")]);
    }

    #[test]
    fn objects_and_arrays_are_announced_at_their_path() {
        let mut seen = Vec::new();
        Scanner::new(Limits::default())
            .scan(br#"{"a":{"b":[1,{}]},"c":[]}"#, |path, value| {
                let what = match value {
                    Scalar::Compound => "compound".to_owned(),
                    other => format!("{:?}", leaf_of(other)),
                };
                seen.push((render(path), what));
                Flow::Continue
            })
            .expect("valid");
        let seen: Vec<(&str, &str)> = seen.iter().map(|(p, w)| (p.as_str(), w.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("a", "compound"),
                ("a.b", "compound"),
                ("a.b[0]", r#"Some(Num("1"))"#),
                ("a.b[1]", "compound"),
                ("c", "compound"),
            ]
        );
    }

    #[test]
    fn a_scanner_is_reusable_and_keeps_its_capacity() {
        let mut scanner = Scanner::new(Limits::default());
        let mut count = 0;
        // A failing scan leaves nothing behind for the next one.
        assert!(scanner
            .scan(br#"{"a":{"b":{"c":["#, |_, _| Flow::Continue)
            .is_err());
        for _ in 0..3 {
            let line = LOG_LINE.to_owned();
            scanner
                .scan(line.as_bytes(), |path, value| {
                    assert!(path.len() <= 3);
                    count += usize::from(!matches!(value, Scalar::Compound));
                    Flow::Continue
                })
                .unwrap();
        }
        assert_eq!(count, 18);
        assert!(scanner.path_buf.is_empty());
        // The recycling trick keeps the allocation (see `Scanner`).
        assert!(scanner.path_buf.capacity() >= 3);
    }

    #[test]
    fn path_is_matches_exact_key_paths() {
        let key = |k: &'static str| PathSeg::Key(Cow::Borrowed(k));
        let path = [key("error"), key("message")];
        assert!(path_is(&path, "error.message"));
        assert!(!path_is(&path, "error"));
        assert!(!path_is(&path, "error.message.x"));
        assert!(!path_is(&path, "error.messag"));
        assert!(!path_is(&path, "message"));
        assert!(path_is(&[key("client_ip")], "client_ip"));
        assert!(!path_is(
            &[key("error"), PathSeg::Index(0), key("message")],
            "error.0.message"
        ));
        assert!(!path_is(&[key("a"), PathSeg::Index(0)], "a"));
        assert!(!path_is(&[], ""));
        assert!(!path_is(&[key("a.b")], "a.b"));
        assert!(path_is(
            &[PathSeg::Key(Cow::Owned("owned".into()))],
            "owned"
        ));
    }

    /// The plain definition `path_is` used to have: split `dotted` at
    /// every '.' and compare part by part.
    fn path_is_by_splitting(path: &[PathSeg<'_>], dotted: &str) -> bool {
        let mut parts = dotted.split('.');
        for seg in path {
            match (seg, parts.next()) {
                (PathSeg::Key(key), Some(part)) if key == part => {}
                _ => return false,
            }
        }
        !path.is_empty() && parts.next().is_none()
    }

    proptest! {
        #[test]
        fn path_is_agrees_with_splitting(
            segs in prop::collection::vec(
                prop_oneof![
                    "(a|b|ab|a\\.b|\\.|)".prop_map(|k| PathSeg::Key(Cow::Owned(k))),
                    (0usize..2).prop_map(PathSeg::Index),
                ],
                0..4,
            ),
            dotted in "(a|b|ab|\\.|){0,5}",
        ) {
            prop_assert_eq!(path_is(&segs, &dotted), path_is_by_splitting(&segs, &dotted));
            // The length test that callers run first never rules out a match.
            if path_is(&segs, &dotted) {
                prop_assert_eq!(dotted_len(&segs), Some(dotted.len()));
            }
        }
    }

    proptest! {
        /// `stop_at` finds what a byte-by-byte search finds, at every
        /// alignment and length.
        #[test]
        fn stop_at_agrees_with_a_plain_search(
            s in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(0x1f_u8), Just(0x20_u8), Just(0x7f_u8), Just(0x80_u8), Just(0xff_u8), any::<u8>(), Just(b'a')],
                0..40,
            ),
        ) {
            let want = s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(stop_at(&s), want);
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            ScanError::Syntax { offset: 4 }.to_string(),
            "JSON syntax error at byte 4"
        );
        assert_eq!(ScanError::NotAnObject.to_string(), "not a JSON object");
    }

    // ---- property tests ----

    fn arb_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("not finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            any::<String>().prop_map(Value::String),
        ]
    }

    fn arb_object_of(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        // A BTreeMap: keys unique, as the comparison below needs.
        prop::collection::btree_map(any::<String>(), inner, 0..6)
            .prop_map(|members| Value::Object(members.into_iter().collect()))
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        let value = arb_leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                arb_object_of(inner),
            ]
        });
        arb_object_of(value)
    }

    type Expected = Vec<(Vec<PathSeg<'static>>, Leaf)>;

    /// The leaves of a `Value`, walked the way the scanner walks its text.
    fn value_leaves(value: &Value, path: &mut Vec<PathSeg<'static>>, out: &mut Expected) {
        let leaf = match value {
            Value::Null => Leaf::Null,
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Number(n) => Leaf::Num(n.to_string()),
            Value::String(s) => Leaf::Str(s.clone()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    value_leaves(item, path, out);
                    path.pop();
                }
                return;
            }
            Value::Object(members) => {
                for (key, item) in members {
                    path.push(PathSeg::Key(Cow::Owned(key.clone())));
                    value_leaves(item, path, out);
                    path.pop();
                }
                return;
            }
        };
        out.push((path.clone(), leaf));
    }

    const ROOMY: Limits = Limits {
        max_depth: 64,
        max_values: usize::MAX,
    };

    /// Bytes JSON is made of, and a few it must cope with; no LF or CR,
    /// which serde_json allows around the object and the scanner does not.
    const ALPHABET: &[u8] = b"{}[]:,\"\\/ \t0123456789-+.eEtrufalsnbdDcCx\x01\x1f\x7f\xc3\xa9\xff";

    proptest! {
        #[test]
        fn scan_yields_exactly_the_leaves_of_serialized_values(object in arb_object()) {
            let line = serde_json::to_string(&object).unwrap();
            let mut expected = Vec::new();
            value_leaves(&object, &mut Vec::new(), &mut expected);
            let mut got: Expected = Vec::new();
            Scanner::new(ROOMY).scan(line.as_bytes(), |path, value| {
                if let Some(leaf) = leaf_of(value) {
                    got.push((owned_path(path), leaf));
                }
                Flow::Continue
            }).unwrap();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn escaped_strings_round_trip(
            s in any::<String>(),
            styles in prop::collection::vec(0u8..3, 64),
        ) {
            // Each char written raw, as \uXXXX (pairs beyond the BMP), or
            // with an upper-case \uXXXX, cycling through `styles`.
            let mut json = String::from("\"");
            for (i, c) in s.chars().enumerate() {
                let style = styles[i % styles.len()];
                let needs_escape = c < ' ' || c == '"' || c == '\\';
                if style == 0 && !needs_escape {
                    json.push(c);
                    continue;
                }
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if style == 2 {
                        json.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        json.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            json.push('"');
            prop_assert_eq!(one_string(&json).unwrap().0, s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = scan_with(Limits::default(), &line);
            let mut prefixed = b"{\"".to_vec();
            prefixed.extend_from_slice(&line);
            let _ = scan_with(Limits::default(), &prefixed);
        }

        #[test]
        fn accepts_exactly_what_serde_json_accepts(
            line in prop::collection::vec(prop::sample::select(ALPHABET), 0..48),
        ) {
            agrees_with_serde_json(&line)?;
        }

        #[test]
        fn mutated_documents_agree_with_serde_json(
            object in arb_object(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(ALPHABET)),
                1..4,
            ),
        ) {
            let mut line = serde_json::to_string(&object).unwrap().into_bytes();
            for (at, kind, byte) in edits {
                let at = at.index(line.len() + 1);
                match kind {
                    0 => line.insert(at, byte),
                    1 if at < line.len() => line[at] = byte,
                    _ => line.truncate(at),
                }
            }
            agrees_with_serde_json(&line)?;
        }
    }

    /// The scanner accepts `line` exactly when serde_json, validating
    /// without building values (so lone surrogates, invalid UTF-8 and huge
    /// numbers pass there too), accepts it as an object.
    fn agrees_with_serde_json(line: &[u8]) -> Result<(), TestCaseError> {
        let unbounded = Limits {
            max_depth: usize::MAX,
            max_values: usize::MAX,
        };
        let ours = scan_with(unbounded, line);
        let starts_object = line.iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b'{');
        let theirs = serde_json::from_slice::<serde::de::IgnoredAny>(line);
        prop_assert_eq!(
            ours.is_ok(),
            starts_object && theirs.is_ok(),
            "line {:?}: ours {:?}, serde_json {:?}",
            String::from_utf8_lossy(line),
            ours,
            theirs
        );
        Ok(())
    }
}
