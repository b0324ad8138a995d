//! CSV read as it arrives: a parser fed bytes in chunks of any size (RFC 4180; a UTF-8
//! byte-order mark, CRLF line ends and quoted fields are all fine) and a stream of its
//! records over a request body, a file or a text. Memory stays bounded whatever the file's
//! size: one row at a time, a row over [`MAX_ROW_BYTES`] refused with its line rather than
//! held, and a body over its limit stopped at the limit.

use std::collections::VecDeque;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use hyper::body::Body as _;

use super::Rejected;

/// The longest row kept; a longer one is refused with its line (a quote left open would
/// otherwise gather the rest of the file into one field).
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// What the parser hands over: a record with the line it starts on (the header is line
/// 1), or a row refused before its columns are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Row(usize, Vec<String>),
    Refused(Rejected),
}

/// A push parser: [`CsvParser::feed`] each chunk as it comes, then [`CsvParser::finish`].
/// Records come out exactly as they would from the whole text at once, wherever the
/// chunks split it (inside a quote, a CRLF, a UTF-8 character or the byte-order mark).
#[derive(Debug)]
pub struct CsvParser {
    /// The first bytes, held until it is known whether they are a byte-order mark.
    head: Vec<u8>,
    started: bool,
    field: Vec<u8>,
    /// Bytes given to the current field, including those not kept in a row too long.
    field_len: usize,
    record: Vec<Vec<u8>>,
    record_bytes: usize,
    too_long: bool,
    quoted: bool,
    /// A quote inside a quoted field: the next byte says whether it is `""` or the end.
    quote_pending: bool,
    /// A CR outside quotes: dropped when an LF follows, kept otherwise.
    cr_pending: bool,
    line: usize,
    start: usize,
    /// Records handed over so far; the first is the header.
    records: usize,
}

impl Default for CsvParser {
    fn default() -> Self {
        CsvParser {
            head: Vec::new(),
            started: false,
            field: Vec::new(),
            field_len: 0,
            record: Vec::new(),
            record_bytes: 0,
            too_long: false,
            quoted: false,
            quote_pending: false,
            cr_pending: false,
            line: 1,
            start: 1,
            records: 0,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl CsvParser {
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Item>) {
        if !self.started {
            let take = (BOM.len() - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.head.len() < BOM.len() {
                return;
            }
            self.start_body(out);
        }
        for &b in chunk {
            self.byte(b, out);
        }
    }

    /// The end of the input: the last record, or the refusal of a quote never closed.
    pub fn finish(&mut self, out: &mut Vec<Item>) {
        if !self.started {
            self.start_body(out);
        }
        if std::mem::take(&mut self.quote_pending) {
            self.quoted = false;
        }
        if std::mem::take(&mut self.cr_pending) {
            self.push(b'\r');
        }
        if self.quoted {
            let (start, end) = (self.start, self.line);
            out.push(Item::Refused(Rejected {
                line: start,
                error: format!(
                    "a quoted field starts on this line and is never closed; lines {start} to {end} were not imported"
                ),
            }));
            self.clear();
            return;
        }
        if self.field_len > 0 || !self.record.is_empty() {
            self.end_field();
            self.emit(out, false);
        }
    }

    fn start_body(&mut self, out: &mut Vec<Item>) {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        if head != BOM {
            for b in head {
                self.byte(b, out);
            }
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Item>) {
        if std::mem::take(&mut self.quote_pending) {
            if b == b'"' {
                self.push(b'"');
                return;
            }
            self.quoted = false;
        }
        if std::mem::take(&mut self.cr_pending) && b != b'\n' {
            self.push(b'\r');
        }
        match b {
            b'"' if self.quoted => self.quote_pending = true,
            b'"' if self.field_len == 0 => self.quoted = true,
            b',' if !self.quoted => self.end_field(),
            b'\r' if !self.quoted => self.cr_pending = true,
            b'\n' if !self.quoted => {
                self.end_field();
                self.emit(out, true);
                self.line += 1;
                self.start = self.line;
            }
            b => {
                if b == b'\n' {
                    self.line += 1;
                }
                self.push(b);
            }
        }
    }

    fn push(&mut self, b: u8) {
        self.field_len += 1;
        self.record_bytes += 1;
        if self.record_bytes > MAX_ROW_BYTES {
            if !self.too_long {
                self.too_long = true;
                self.field = Vec::new();
                self.record = Vec::new();
            }
            return;
        }
        self.field.push(b);
    }

    fn end_field(&mut self) {
        self.field_len = 0;
        let field = std::mem::take(&mut self.field);
        if !self.too_long {
            self.record.push(field);
        }
    }

    fn clear(&mut self) {
        self.field.clear();
        self.field_len = 0;
        self.record.clear();
        self.record_bytes = 0;
        self.too_long = false;
    }

    /// Hands the record over; `skip_blank`: a line holding nothing but spaces is no row.
    fn emit(&mut self, out: &mut Vec<Item>, skip_blank: bool) {
        let line = self.start;
        if std::mem::take(&mut self.too_long) {
            self.clear();
            self.records += 1;
            out.push(Item::Refused(Rejected {
                line,
                error: format!(
                    "the row is longer than {} MiB; it was not imported",
                    MAX_ROW_BYTES >> 20
                ),
            }));
            return;
        }
        let record = std::mem::take(&mut self.record);
        self.clear();
        if skip_blank && record.len() == 1 && record[0].trim_ascii().is_empty() {
            return;
        }
        let header = self.records == 0;
        self.records += 1;
        let mut fields = Vec::with_capacity(record.len());
        let mut utf8 = true;
        for f in record {
            fields.push(match String::from_utf8(f) {
                Ok(s) => s,
                Err(e) => {
                    utf8 = false;
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                }
            });
        }
        if header {
            // A stray NUL in the header is dropped, so the columns still match.
            for f in &mut fields {
                f.retain(|c| c != '\0');
            }
        } else if fields.iter().any(|f| f.contains('\0')) {
            out.push(Item::Refused(Rejected {
                line,
                error: "contains the NUL character (U+0000), which cannot be stored".into(),
            }));
            return;
        } else if !utf8 {
            out.push(Item::Refused(Rejected {
                line,
                error: "is not UTF-8 text; save the file as CSV UTF-8".into(),
            }));
            return;
        }
        out.push(Item::Row(line, fields));
    }
}

/// Why the bytes stopped before their end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// More bytes than the limit; nothing after the limit was read.
    TooLarge { limit: u64 },
    /// The body broke off (the client went away, or paused longer than the body timeout).
    Failed(String),
}

enum Source {
    Body(Body),
    Reader(Box<dyn std::io::Read + Send>),
    Text(Option<Vec<u8>>),
}

/// The records of a CSV body, file or text, read a chunk at a time as they are asked for.
pub struct CsvStream {
    source: Source,
    limit: u64,
    read: u64,
    parser: CsvParser,
    ready: VecDeque<Item>,
    ended: bool,
}

impl CsvStream {
    fn new(source: Source, limit: u64) -> Self {
        CsvStream {
            source,
            limit,
            read: 0,
            parser: CsvParser::default(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// A request body, refused past `limit` bytes.
    pub fn from_body(body: Body, limit: u64) -> Self {
        CsvStream::new(Source::Body(body), limit)
    }

    /// A file or any reader (the CLI), read 256 KiB at a time.
    pub fn from_reader(reader: impl std::io::Read + Send + 'static) -> Self {
        CsvStream::new(Source::Reader(Box::new(reader)), u64::MAX)
    }

    pub fn from_text(text: impl Into<Vec<u8>>) -> Self {
        CsvStream::new(Source::Text(Some(text.into())), u64::MAX)
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The next record, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Item>, ReadError> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(Some(item));
            }
            if self.ended {
                return Ok(None);
            }
            let mut out = Vec::new();
            match self.chunk().await {
                Ok(Some(bytes)) => {
                    self.read += bytes.len() as u64;
                    if self.read > self.limit {
                        self.ended = true;
                        if let Source::Body(body) = &mut self.source {
                            drain(body).await;
                        }
                        self.source = Source::Text(None);
                        return Err(ReadError::TooLarge { limit: self.limit });
                    }
                    self.parser.feed(&bytes, &mut out);
                }
                Ok(None) => {
                    self.ended = true;
                    self.parser.finish(&mut out);
                }
                Err(e) => {
                    self.ended = true;
                    return Err(e);
                }
            }
            self.ready.extend(out);
        }
    }

    async fn chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        match &mut self.source {
            Source::Text(text) => Ok(text.take().map(Bytes::from)),
            Source::Reader(r) => {
                let mut buf = vec![0; 256 << 10];
                let n = loop {
                    match r.read(&mut buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ReadError::Failed(e.to_string())),
                    }
                };
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
            Source::Body(body) => loop {
                let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
                match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(ReadError::Failed(e.to_string())),
                    Some(Ok(frame)) => {
                        // Trailers carry no rows.
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }
}

/// How much of a refused body is still read (and dropped) before the answer, at most:
/// a client that is nearly done then gets its 413 on a connection closed cleanly, rather
/// than reset with its answer lost; a larger one is cut off.
const DRAIN_BYTES: u64 = 8 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops what is left of a refused body, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`].
pub async fn drain(body: &mut Body) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(n) {
                Some(l) => left = l,
                None => return,
            }
        }
    })
    .await;
}

/// Every item of a text at once (tests, and the small files of the web page).
pub fn items(text: &str) -> Vec<Item> {
    let mut p = CsvParser::default();
    let mut out = Vec::new();
    p.feed(text.as_bytes(), &mut out);
    p.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(bytes: &[u8], size: usize) -> Vec<Item> {
        let mut p = CsvParser::default();
        let mut out = Vec::new();
        for c in bytes.chunks(size) {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    const TRICKY: &str = "\u{feff}name,phone,tags\r\n\"Ortega, Luis\",512-555-0178,\"vip;hvac\"\r\n\r\n   \nZoë \"Z\",5125550179,\n\"two\nlines \"\"quoted\"\"\",5125550180,x\r\nB\0o,5125550181\nlast,5125550182";

    #[test]
    fn every_chunking_gives_the_same_records() {
        let whole = items(TRICKY);
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert_eq!(
            whole[1],
            Item::Row(
                2,
                vec![
                    "Ortega, Luis".to_string(),
                    "512-555-0178".into(),
                    "vip;hvac".into()
                ]
            )
        );
        assert_eq!(
            whole[2],
            Item::Row(
                5,
                vec!["Zoë \"Z\"".to_string(), "5125550179".into(), "".into()]
            )
        );
        assert_eq!(
            whole[3],
            Item::Row(
                6,
                vec![
                    "two\nlines \"quoted\"".to_string(),
                    "5125550180".into(),
                    "x".into()
                ]
            )
        );
        assert!(matches!(&whole[4], Item::Refused(r) if r.line == 8 && r.error.contains("U+0000")));
        assert_eq!(
            whole[5],
            Item::Row(9, vec!["last".to_string(), "5125550182".into()])
        );
        for size in 1..=TRICKY.len() {
            assert_eq!(chunked(TRICKY.as_bytes(), size), whole, "chunks of {size}");
        }
    }

    #[test]
    fn a_quote_never_closed_is_refused_with_its_lines() {
        let out = items("name,phone\nAna,1\n\"Di,2\nEd,3\n");
        assert_eq!(out.len(), 3, "{out:?}");
        let Item::Refused(r) = &out[2] else {
            panic!("{out:?}")
        };
        assert_eq!(r.line, 3);
        assert!(r.error.contains("lines 3 to 5"), "{}", r.error);
    }

    #[test]
    fn a_row_too_long_is_refused_and_the_next_row_keeps_its_line() {
        let mut text = String::from("name,phone\n\"");
        text.push_str(&"x\n".repeat(MAX_ROW_BYTES));
        text.push_str("\",1\nAna,2\n");
        let out = chunked(text.as_bytes(), 4096);
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[1], Item::Refused(r) if r.line == 2 && r.error.contains("longer")));
        assert_eq!(
            out[2],
            Item::Row(MAX_ROW_BYTES + 3, vec!["Ana".to_string(), "2".into()])
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_refuse_their_row_only() {
        let out = chunked(b"name,phone\nA\xff,1\nB,2\n", 3);
        assert!(matches!(&out[1], Item::Refused(r) if r.line == 2 && r.error.contains("UTF-8")));
        assert_eq!(out[2], Item::Row(3, vec!["B".to_string(), "2".into()]));
    }

    #[tokio::test]
    async fn a_stream_over_its_limit_stops_there() {
        let body = Body::from("name,phone\nAna,5125550150\n".repeat(10));
        let mut s = CsvStream::from_body(body, 20);
        assert_eq!(s.next().await, Err(ReadError::TooLarge { limit: 20 }));
    }
}
