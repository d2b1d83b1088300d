//! Splitting a byte stream into lines: `\n` only, a length cap, bounded
//! memory. Used for streams that are read once from start to end (the
//! replay tool's files and standard input).

use std::io::{self, Read};

/// Reads lines from `R` in large blocks, without copying complete lines.
///
/// A line longer than `max_line` is handed out cut to its first `max_line`
/// bytes, once, and the rest of it is skipped: a 100 MB line without a
/// newline costs one buffer, not 100 MB.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    max_line: usize,
    /// Inside an over-long line whose head was already handed out.
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, max_line: usize, buf_bytes: usize) -> LineReader<R> {
        let max_line = max_line.max(1);
        LineReader {
            inner,
            buf: vec![0; buf_bytes.max(max_line * 2)],
            start: 0,
            end: 0,
            max_line,
            skipping: false,
        }
    }

    /// Reads one block and calls `f` for each line completed by it (without
    /// its `\n`). Returns `false` at end of input, after handing out a last
    /// line that had no `\n`.
    pub fn read_batch(&mut self, f: &mut impl FnMut(&[u8])) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            if self.end > self.start && !self.skipping {
                f(&self.buf[self.start..self.end]);
            }
            self.start = 0;
            self.end = 0;
            return Ok(false);
        }
        let scan_from = self.end;
        self.end += n;
        let mut pos = scan_from;
        while let Some(i) = memchr::memchr(b'\n', &self.buf[pos..self.end]) {
            let nl = pos + i;
            if self.skipping {
                self.skipping = false;
            } else {
                // A complete line read in one block is cut as well.
                f(&self.buf[self.start..nl.min(self.start + self.max_line)]);
            }
            self.start = nl + 1;
            pos = nl + 1;
        }
        // What is left is a partial line. If it is already too long, hand
        // out its head now and skip the rest up to the next newline.
        if !self.skipping && self.end - self.start >= self.max_line {
            f(&self.buf[self.start..self.start + self.max_line]);
            self.skipping = true;
        }
        if self.skipping {
            self.start = self.end;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize, buf: usize) -> Vec<Vec<u8>> {
        let mut r = LineReader::new(input, max, buf);
        let mut out = Vec::new();
        while r.read_batch(&mut |l| out.push(l.to_vec())).unwrap() {}
        out
    }

    #[test]
    fn splits_on_newline_only_and_keeps_the_last_partial_line() {
        let got = lines(b"a\r\nb\rc\n\nlast", 100, 8);
        assert_eq!(
            got,
            vec![
                b"a\r".to_vec(),
                b"b\rc".to_vec(),
                b"".to_vec(),
                b"last".to_vec()
            ]
        );
    }

    #[test]
    fn cuts_long_lines_once_and_resumes_after_them() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 10, 16);
        assert_eq!(got, vec![vec![b'x'; 10], b"next".to_vec()]);
    }

    #[test]
    fn a_huge_line_without_newline_uses_bounded_memory() {
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                let n = buf.len().min(self.0 as usize);
                buf[..n].fill(b'y');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let mut r = LineReader::new(Endless(100 << 20), 64 * 1024, 256 * 1024);
        let mut count = 0;
        while r
            .read_batch(&mut |l| {
                assert_eq!(l.len(), 64 * 1024);
                count += 1;
            })
            .unwrap()
        {}
        assert_eq!(count, 1);
        assert_eq!(r.buf.len(), 256 * 1024);
    }

    #[test]
    fn invalid_utf8_is_just_bytes() {
        assert_eq!(
            lines(b"\xff\xfe ok\n", 100, 8),
            vec![b"\xff\xfe ok".to_vec()]
        );
    }
}
