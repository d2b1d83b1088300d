//! `source::lines::LineReader` over a reader that returns the input in
//! chunks of sizes chosen by the input (and sometimes `Interrupted`), with
//! a line cap and buffer size chosen by the input too. The lines must be
//! exactly what splitting the whole input on `\n` gives, each cut to the
//! cap, whatever the chunking: a line split across reads is never split
//! in two, and an over-long line is handed out once.
#![no_main]

use std::io::{self, Read};

use arbitrary::Arbitrary;
use authwatch::source::lines::LineReader;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    max_line: u8,
    buf_bytes: u16,
    /// Chunk sizes, used in a cycle; 0 means one `Interrupted` error.
    chunks: Vec<u8>,
    data: Vec<u8>,
}

struct Chunked<'a> {
    data: &'a [u8],
    chunks: &'a [u8],
    next: usize,
    /// The last call was `Interrupted`: the next one reads, so that a
    /// reader of only zeros cannot keep `LineReader`'s retry loop busy.
    interrupted: bool,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Ok(0);
        }
        let size = if self.chunks.is_empty() {
            usize::MAX
        } else {
            let c = self.chunks[self.next % self.chunks.len()];
            self.next += 1;
            if c == 0 && !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            usize::from(c.max(1))
        };
        self.interrupted = false;
        let n = size.min(buf.len()).min(self.data.len());
        assert!(n > 0, "LineReader offered an empty buffer");
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: Input| {
    let max_line = usize::from(input.max_line).max(1);
    let reader = Chunked {
        data: &input.data,
        chunks: &input.chunks,
        next: 0,
        interrupted: false,
    };
    let mut lines = LineReader::new(reader, max_line, usize::from(input.buf_bytes));
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut batches = 0usize;
    while lines
        .read_batch(&mut |l| got.push(l.to_vec()))
        .expect("Interrupted is retried, nothing else fails")
    {
        batches += 1;
        assert!(
            batches <= input.data.len() + 1,
            "read_batch does not progress"
        );
    }

    let body = input.data.strip_suffix(b"\n").unwrap_or(&input.data);
    let want: Vec<Vec<u8>> = if input.data.is_empty() {
        Vec::new()
    } else {
        body.split(|&b| b == b'\n')
            .map(|l| l[..l.len().min(max_line)].to_vec())
            .collect()
    };
    assert_eq!(got, want);
});
