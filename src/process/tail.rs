//! The last bytes the child wrote to stderr, for its crash record.
//!
//! Pure. The copy path only appends whole chunks to a fixed ring (no per-line work); lines are
//! split once, when a record is built, and only the last `--tail-lines` are kept.

/// The byte cap of a tail, whatever `--tail-lines` says.
pub const MAX_BYTES: usize = 64 * 1024;

/// A ring buffer holding the last `cap` bytes pushed.
pub struct Tail {
    buf: Vec<u8>,
    /// Where the next byte goes once the buffer is full.
    pos: usize,
    cap: usize,
    /// Bytes were dropped from the front.
    wrapped: bool,
}

impl Tail {
    /// An empty tail of at most `cap` bytes.
    pub fn new(cap: usize) -> Tail {
        Tail {
            buf: Vec::with_capacity(cap),
            pos: 0,
            cap,
            wrapped: false,
        }
    }

    /// Appends `data`, dropping the oldest bytes past the cap.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if data.len() >= self.cap {
            data = &data[data.len() - self.cap..];
            self.buf.clear();
            self.buf.extend_from_slice(data);
            self.pos = 0;
            self.wrapped = true;
            return;
        }
        let room = self.cap - self.buf.len();
        if room > 0 {
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            self.wrapped = true;
            let n = (self.cap - self.pos).min(data.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos = (self.pos + n) % self.cap;
            data = &data[n..];
        }
    }

    /// Bytes went by without being pushed: what is kept is no longer followed by what comes
    /// next, so it is dropped, and the next push may start inside a line.
    pub fn skipped(&mut self) {
        self.clear();
        self.wrapped = true;
    }

    /// Forgets everything (a new run starts).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.wrapped = false;
    }

    /// The bytes in order, oldest first.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len());
        out.extend_from_slice(&self.buf[self.pos..]);
        out.extend_from_slice(&self.buf[..self.pos]);
        out
    }

    /// The last `n` lines, without a line cut in half by the cap; `None` when empty.
    pub fn last_lines(&self, n: usize) -> Option<Vec<u8>> {
        let bytes = self.bytes();
        let mut start = 0;
        if self.wrapped {
            // The first line lost its beginning.
            if let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
                start = nl + 1;
            }
        }
        let body = &bytes[start..];
        let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
        if n == 0 || trimmed.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let mut cut = 0;
        let mut seen = 0;
        for (i, &b) in trimmed.iter().enumerate().rev() {
            if b == b'\n' {
                seen += 1;
                if seen == n {
                    cut = i + 1;
                    break;
                }
            }
        }
        Some(body[cut..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_skip_only_what_follows_counts_and_its_cut_line_is_dropped() {
        let mut t = Tail::new(64);
        t.push(b"old line\n");
        t.skipped();
        t.push(b"of a line\nwhole line\n");
        assert_eq!(t.bytes(), b"of a line\nwhole line\n");
        assert_eq!(t.last_lines(10).unwrap(), b"whole line\n");
    }

    #[test]
    fn keeps_the_last_bytes_across_wraps() {
        let mut t = Tail::new(8);
        t.push(b"abc");
        t.push(b"defgh");
        assert_eq!(t.bytes(), b"abcdefgh");
        t.push(b"ij");
        assert_eq!(t.bytes(), b"cdefghij");
        t.push(b"0123456789");
        assert_eq!(t.bytes(), b"23456789");
        for chunk in b"klmnopqrstu".chunks(3) {
            t.push(chunk);
        }
        assert_eq!(t.bytes(), b"nopqrstu");
    }

    #[test]
    fn last_lines_counts_from_the_end_and_drops_a_cut_line() {
        let mut t = Tail::new(1024);
        t.push(b"one\ntwo\nthree\nfour\n");
        assert_eq!(t.last_lines(2).unwrap(), b"three\nfour\n");
        assert_eq!(t.last_lines(10).unwrap(), b"one\ntwo\nthree\nfour\n");
        t.push(b"partial");
        assert_eq!(t.last_lines(2).unwrap(), b"four\npartial");
        let mut small = Tail::new(10);
        small.push(b"aaaaaaaa\nbb\ncc\n");
        assert_eq!(small.last_lines(5).unwrap(), b"bb\ncc\n");
        assert_eq!(Tail::new(10).last_lines(3), None);
        let mut blank = Tail::new(10);
        blank.push(b"\n \n");
        assert_eq!(blank.last_lines(3), None);
    }

    #[test]
    fn a_single_huge_line_is_kept_as_its_end() {
        let mut t = Tail::new(16);
        t.push(&[b'x'; 100]);
        assert_eq!(t.last_lines(5).unwrap(), vec![b'x'; 16]);
    }
}
