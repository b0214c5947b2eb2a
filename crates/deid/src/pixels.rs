//! Burned-in text removed by a region table (PS3.15 E.3.1, Clean Pixel Data): the site says,
//! per device and image size, which rectangles of the image show text, and those pixels are
//! blanked in every frame before the file leaves.
//!
//! The table is written in the syntax of the RSNA CTP DicomPixelAnonymizer, so a site can use
//! the table it already keeps: each signature is a condition in braces followed by the regions
//! it blanks, `(x, y, width, height)` in pixels from the top left.
//!
//! ```text
//! { Modality.equals("US") * Manufacturer.containsIgnoreCase("Acme") * Rows.equals("480") }
//!   (0, 0, 640, 40)  (560, 440, 80, 40)
//! ```
//!
//! Conditions combine calls with `*` (and), `+` (or), `!` (not) and parentheses. An element is
//! named by its keyword or as `[gggg,eeee]`; the calls are `equals`, `contains`, `startsWith`,
//! `endsWith` (each also `…IgnoreCase`), `matches` (a regular expression over the whole value),
//! `isBlank`, `exists`, `isLessThan` and `isGreaterThan` (numbers), and `true.` / `false.`.
//! The first signature that matches a file gives its regions. Dokuei ships no table: a site
//! writes its own from its devices (or uses the RSNA library it obtained), and a file that may
//! show text and that no signature matches is refused.

use std::path::{Path, PathBuf};

use dicom_core::dictionary::DataDictionary;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dokuei_dicom::decode::{Photometric, Pixels};

use crate::DeidError;

/// A rectangle of the image, in pixels from the top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One comparison in a condition.
#[derive(Debug, Clone)]
enum Call {
    Equals(String, bool),
    Contains(String, bool),
    StartsWith(String, bool),
    EndsWith(String, bool),
    Matches(regex::Regex),
    IsBlank,
    Exists,
    LessThan(f64),
    GreaterThan(f64),
}

/// A signature's condition.
#[derive(Debug, Clone)]
enum Expr {
    Const(bool),
    Test(Tag, Call),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A condition and the regions it blanks.
#[derive(Debug, Clone)]
pub struct Signature {
    /// 1-based, in table order (named in reports).
    pub number: usize,
    /// The line the signature starts on.
    pub line: usize,
    expr: Expr,
    pub regions: Vec<Region>,
}

/// A site's region table.
#[derive(Debug, Clone)]
pub struct RegionTable {
    /// Where it was read from (named in errors and refusals).
    pub path: PathBuf,
    /// SHA-256 of its text, hex: which table cleaned an export, in its report.
    pub sha256: String,
    pub signatures: Vec<Signature>,
}

impl RegionTable {
    /// Reads a table; an error names the file, the line and what is wrong.
    pub fn load(path: &Path) -> Result<RegionTable, DeidError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DeidError::Policy(format!("the region table {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Parses a table's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<RegionTable, DeidError> {
        let fail = |offset: usize, what: String| {
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            DeidError::Policy(format!(
                "the region table {}, line {line}: {what}",
                path.display()
            ))
        };
        let mut signatures: Vec<Signature> = Vec::new();
        let mut rest = 0;
        while let Some(open) = text[rest..].find('{').map(|i| rest + i) {
            let close = text[open..]
                .find('}')
                .map(|i| open + i)
                .ok_or_else(|| fail(open, "a `{` that is never closed".into()))?;
            if let Some(last) = signatures.last_mut() {
                last.regions = regions(&text[rest..open], rest, &fail)?;
            }
            let expr = Parser {
                src: &text[open + 1..close],
                at: 0,
            }
            .parse()
            .map_err(|(at, what)| fail(open + 1 + at, what))?;
            signatures.push(Signature {
                number: signatures.len() + 1,
                line: text[..open].matches('\n').count() + 1,
                expr,
                regions: Vec::new(),
            });
            rest = close + 1;
        }
        if let Some(last) = signatures.last_mut() {
            last.regions = regions(&text[rest..], rest, &fail)?;
        }
        if signatures.is_empty() {
            return Err(fail(
                0,
                "no signature (`{ condition } (x, y, w, h)…`)".into(),
            ));
        }
        if let Some(s) = signatures.iter().find(|s| s.regions.is_empty()) {
            let at = text
                .match_indices('{')
                .nth(s.number - 1)
                .map_or(0, |(i, _)| i);
            return Err(fail(
                at,
                format!(
                    "signature {} has no region `(x, y, width, height)`",
                    s.number
                ),
            ));
        }
        use sha2::Digest as _;
        Ok(RegionTable {
            path: path.to_owned(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
            signatures,
        })
    }

    /// The table as an export's report names it: file name, signatures and digest (the
    /// folder is left out, as it may name a person).
    pub fn describe(&self) -> String {
        format!(
            "{} ({} signatures, SHA-256 {})",
            self.path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            self.signatures.len(),
            &self.sha256[..16]
        )
    }

    /// The first signature that matches the data set.
    pub fn signature_for(&self, data: &InMemDicomObject) -> Option<&Signature> {
        self.signatures.iter().find(|s| eval(&s.expr, data))
    }
}

/// The regions written in `text` (between two signatures), at `offset` in the table.
fn regions(
    text: &str,
    offset: usize,
    fail: &dyn Fn(usize, String) -> DeidError,
) -> Result<Vec<Region>, DeidError> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('(').map(|i| rest + i) {
        let close = text[open..]
            .find(')')
            .map(|i| open + i)
            .ok_or_else(|| fail(offset + open, "a `(` that is never closed".into()))?;
        let inner = &text[open + 1..close];
        rest = close + 1;
        // Words in parentheses are a comment (CTP ignores them too); numbers must be a region.
        if !inner
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-' || c.is_whitespace())
        {
            continue;
        }
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
        match numbers.as_deref() {
            Some([x, y, w, h]) if *w > 0 && *h > 0 => out.push(Region {
                x: *x,
                y: *y,
                width: *w,
                height: *h,
            }),
            _ => {
                return Err(fail(
                    offset + open,
                    format!(
                        "`({inner})` is not a region: four whole numbers x, y, width, height (width and height above 0)"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// A recursive-descent parser of one condition: `or := and ('+' and)*`,
/// `and := unary ('*' unary)*`, `unary := '!' unary | '(' or ')' | call`.
struct Parser<'a> {
    src: &'a str,
    at: usize,
}

type ParseError = (usize, String);

impl Parser<'_> {
    fn parse(mut self) -> Result<Expr, ParseError> {
        let e = self.or()?;
        self.space();
        if self.at < self.src.len() {
            return Err((self.at, format!("unexpected `{}`", self.rest_word())));
        }
        Ok(e)
    }

    fn space(&mut self) {
        while let Some(c) = self.src[self.at..].chars().next() {
            if c.is_whitespace() {
                self.at += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn rest_word(&self) -> String {
        self.src[self.at..].chars().take(20).collect()
    }

    fn eat(&mut self, s: &str) -> bool {
        self.space();
        if self.src[self.at..].starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.and()?];
        while self.eat("+") {
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.unary()?];
        while self.eat("*") {
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err((self.at, "a `(` without its `)`".into()));
            }
            return Ok(e);
        }
        if self.eat("true.") {
            return Ok(Expr::Const(true));
        }
        if self.eat("false.") {
            return Ok(Expr::Const(false));
        }
        self.call()
    }

    fn call(&mut self) -> Result<Expr, ParseError> {
        self.space();
        let start = self.at;
        let tag = if self.eat("[") {
            let end = self.src[self.at..]
                .find(']')
                .map(|i| self.at + i)
                .ok_or((start, "a `[` without its `]`".to_owned()))?;
            let inner = &self.src[self.at..end];
            self.at = end + 1;
            let parse = |s: &str| u16::from_str_radix(s.trim(), 16).ok();
            match inner.split_once(',') {
                Some((g, e)) => match (parse(g), parse(e)) {
                    (Some(g), Some(e)) => Tag(g, e),
                    _ => return Err((start, format!("`[{inner}]` is not a tag [gggg,eeee]"))),
                },
                None => return Err((start, format!("`[{inner}]` is not a tag [gggg,eeee]"))),
            }
        } else {
            let len = self.src[self.at..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(self.src.len() - self.at);
            let name = &self.src[self.at..self.at + len];
            if name.is_empty() {
                return Err((
                    start,
                    format!("expected an element, found `{}`", self.rest_word()),
                ));
            }
            self.at += len;
            StandardDataDictionary
                .by_name(name)
                .map(|e| e.tag.inner())
                .ok_or((start, format!("`{name}` is not a DICOM keyword")))?
        };
        if !self.eat(".") {
            return Err((self.at, "expected `.` and a call after the element".into()));
        }
        let len = self.src[self.at..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(self.src.len() - self.at);
        let method = self.src[self.at..self.at + len].to_owned();
        self.at += len;
        if !self.eat("(") {
            return Err((self.at, format!("expected `(` after `{method}`")));
        }
        self.space();
        let arg = if self.src[self.at..].starts_with('"') {
            let end = self.src[self.at + 1..]
                .find('"')
                .map(|i| self.at + 1 + i)
                .ok_or((self.at, "a string without its closing `\"`".to_owned()))?;
            let s = self.src[self.at + 1..end].to_owned();
            self.at = end + 1;
            Some(s)
        } else if self.src[self.at..].starts_with(')') {
            None
        } else {
            return Err((
                self.at,
                format!("the value of `{method}(` must be in double quotes"),
            ));
        };
        if !self.eat(")") {
            return Err((self.at, format!("expected `)` to close `{method}(`")));
        }
        let need =
            |arg: Option<String>| arg.ok_or((start, format!("`{method}` needs a value in quotes")));
        let number = |arg: Option<String>| -> Result<f64, ParseError> {
            let s = need(arg)?;
            s.trim()
                .parse()
                .map_err(|_| (start, format!("`{method}(\"{s}\")` needs a number")))
        };
        let call = match method.as_str() {
            "equals" => Call::Equals(need(arg)?, false),
            "equalsIgnoreCase" => Call::Equals(need(arg)?, true),
            "contains" => Call::Contains(need(arg)?, false),
            "containsIgnoreCase" => Call::Contains(need(arg)?, true),
            "startsWith" => Call::StartsWith(need(arg)?, false),
            "startsWithIgnoreCase" => Call::StartsWith(need(arg)?, true),
            "endsWith" => Call::EndsWith(need(arg)?, false),
            "endsWithIgnoreCase" => Call::EndsWith(need(arg)?, true),
            "matches" => {
                let pattern = need(arg)?;
                Call::Matches(
                    regex::Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| (start, format!("`matches(\"{pattern}\")`: {e}")))?,
                )
            }
            "isBlank" => Call::IsBlank,
            "exists" => Call::Exists,
            "isLessThan" => Call::LessThan(number(arg)?),
            "isGreaterThan" => Call::GreaterThan(number(arg)?),
            other => {
                return Err((
                    start,
                    format!(
                        "`{other}` is not a call Dokuei knows (equals, contains, startsWith, endsWith, …IgnoreCase, matches, isBlank, exists, isLessThan, isGreaterThan)"
                    ),
                ));
            }
        };
        Ok(Expr::Test(tag, call))
    }
}

fn eval(e: &Expr, data: &InMemDicomObject) -> bool {
    match e {
        Expr::Const(b) => *b,
        Expr::Not(e) => !eval(e, data),
        Expr::And(v) => v.iter().all(|e| eval(e, data)),
        Expr::Or(v) => v.iter().any(|e| eval(e, data)),
        Expr::Test(tag, call) => {
            let element = data.get(*tag);
            let value = element
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_matches(['\0', ' ']).to_owned());
            let v = value.clone().unwrap_or_default();
            let fold = |s: &str, ignore: bool| {
                if ignore {
                    s.to_lowercase()
                } else {
                    s.to_owned()
                }
            };
            match call {
                Call::Exists => element.is_some(),
                Call::IsBlank => v.is_empty(),
                Call::Equals(s, i) => value.is_some() && fold(&v, *i) == fold(s, *i),
                Call::Contains(s, i) => value.is_some() && fold(&v, *i).contains(&fold(s, *i)),
                Call::StartsWith(s, i) => value.is_some() && fold(&v, *i).starts_with(&fold(s, *i)),
                Call::EndsWith(s, i) => value.is_some() && fold(&v, *i).ends_with(&fold(s, *i)),
                Call::Matches(r) => value.is_some() && r.is_match(&v),
                Call::LessThan(n) => v.trim().parse::<f64>().is_ok_and(|x| x < *n),
                Call::GreaterThan(n) => v.trim().parse::<f64>().is_ok_and(|x| x > *n),
            }
        }
    }
}

/// Transfer syntaxes whose pixels lost information: a cleaned copy, written native, still says
/// so (Lossy Image Compression 01).
const LOSSY: [&str; 9] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.4.101",
    "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.203",
];

/// Explicit VR Little Endian: how cleaned pixels are written.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// A file's pixels with its regions blanked, and the image attributes that go with them.
#[derive(Debug)]
pub struct Cleaned {
    elements: Vec<DataElement<InMemDicomObject>>,
    /// What was done, for the report: signature, regions, frames, pixels per frame.
    pub note: String,
}

/// Decodes every frame of `file`, blanks `signature`'s regions in each, and returns the native
/// pixel data and attributes to put in the output. The fill is the darkest value as the image is
/// shown: the frame's minimum (MONOCHROME2) or maximum (MONOCHROME1), black (RGB), or the
/// palette's darkest entry. Greyscale values are also cut to Bits Stored, which clears any
/// overlay kept in the unused high bits.
pub fn clean(file: &DefaultDicomObject, signature: &Signature) -> Result<Cleaned, DeidError> {
    let refuse = |why: String| DeidError::Refused(why);
    let source = dokuei_dicom::Source::File {
        path: PathBuf::from("<input>"),
    };
    let instance = dokuei_dicom::index::instance_of(&source, file)
        .map_err(|e| refuse(format!("its pixels cannot be read to clean them: {e}")))?;
    let info = instance
        .image
        .clone()
        .ok_or_else(|| refuse("the region table matches it, but it has no image".into()))?;
    if info.photometric.starts_with("YBR") && info.bits_allocated > 8 {
        return Err(refuse(format!(
            "the region table matches it, but its pixels are {}-bit {}, which Dokuei does not clean",
            info.bits_allocated, info.photometric
        )));
    }
    if info.bits_allocated == 1 {
        return Err(refuse(
            "the region table matches it, but its pixels are 1-bit, which Dokuei does not clean"
                .into(),
        ));
    }
    let (rows, columns) = (info.rows, info.columns);
    // The regions as they fall on this image; one wholly outside is a table error for this
    // image, reported rather than passed over.
    let mut rects = Vec::new();
    for r in &signature.regions {
        if r.x >= columns || r.y >= rows {
            return Err(refuse(format!(
                "signature {} of the region table has a region ({}, {}, {}, {}) outside this {columns} × {rows} image",
                signature.number, r.x, r.y, r.width, r.height
            )));
        }
        rects.push((
            r.x,
            r.y,
            r.x.saturating_add(r.width).min(columns),
            r.y.saturating_add(r.height).min(rows),
        ));
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut photometric = None;
    let mut bits = 8u16;
    let mut palette_fill = None;
    for f in 0..info.frames {
        let mut frame = dokuei_dicom::decode::decode_frame_of(file, &instance, f)
            .map_err(|e| refuse(format!("its pixels cannot be decoded to clean them: {e}")))?;
        let stored = u32::from(frame.bits_stored);
        let samples = if frame.pixels.is_color() { 3 } else { 1 };
        let w = columns as usize;
        let inside = |i: usize| {
            let p = i / samples;
            let (x, y) = ((p % w) as u32, (p / w) as u32);
            rects
                .iter()
                .any(|&(x0, y0, x1, y1)| x >= x0 && x < x1 && y >= y0 && y < y1)
        };
        if frame.photometric == Photometric::Palette && palette_fill.is_none() {
            palette_fill = Some(frame.palette.as_ref().map_or(0, |p| {
                let darkest = p
                    .rgb
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| c.iter().map(|&v| u32::from(v)).sum::<u32>())
                    .map_or(0, |(i, _)| i as i64);
                p.first_mapped + darkest
            }));
        }
        let mono1 = frame.photometric == Photometric::Monochrome1;
        let color = frame.pixels.is_color();
        macro_rules! blank {
            ($v:expr, $t:ty, $signed:expr, $width:expr) => {{
                let v = $v;
                // Cut to Bits Stored (sign-extended when signed).
                if !color && stored < $width {
                    for x in v.iter_mut() {
                        *x = if $signed {
                            (((*x as i64) << (64 - stored)) >> (64 - stored)) as $t
                        } else {
                            ((*x as u64) & ((1u64 << stored) - 1)) as $t
                        };
                    }
                }
                let fill: $t = if color {
                    0 as $t
                } else if let Some(p) = palette_fill {
                    p as $t
                } else if mono1 {
                    v.iter().copied().max().unwrap_or(0 as $t)
                } else {
                    v.iter().copied().min().unwrap_or(0 as $t)
                };
                for (i, x) in v.iter_mut().enumerate() {
                    if inside(i) {
                        *x = fill;
                    }
                }
                for x in v.iter() {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                $width as u16
            }};
        }
        bits = match &mut frame.pixels {
            Pixels::U8(v) | Pixels::Rgb8(v) => blank!(v, u8, false, 8u32),
            Pixels::I8(v) => blank!(v, i8, true, 8u32),
            Pixels::U16(v) | Pixels::Rgb16(v) => blank!(v, u16, false, 16u32),
            Pixels::I16(v) => blank!(v, i16, true, 16u32),
            Pixels::U32(v) | Pixels::Rgb32(v) => blank!(v, u32, false, 32u32),
            Pixels::I32(v) => blank!(v, i32, true, 32u32),
        };
        photometric = Some(frame.photometric);
    }
    let text = |tag| {
        file.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let cs = |tag, v: &str| DataElement::new(tag, VR::CS, PrimitiveValue::from(v));
    let mut elements = vec![
        us(tags::BITS_ALLOCATED, bits),
        cs(tags::BURNED_IN_ANNOTATION, "NO"),
    ];
    let bits_stored = info.bits_stored.min(bits);
    if bits_stored != info.bits_stored {
        elements.push(us(tags::BITS_STORED, bits_stored));
        elements.push(us(tags::HIGH_BIT, bits_stored - 1));
    }
    if photometric == Some(Photometric::Rgb) {
        // Decoded YBR is RGB now, interleaved.
        elements.push(cs(tags::PHOTOMETRIC_INTERPRETATION, "RGB"));
        elements.push(us(tags::PLANAR_CONFIGURATION, 0));
    }
    let ts = instance.transfer_syntax.trim_end_matches(['\0', ' ']);
    if LOSSY.contains(&ts) && text(tags::LOSSY_IMAGE_COMPRESSION) != "01" {
        elements.push(cs(tags::LOSSY_IMAGE_COMPRESSION, "01"));
    }
    elements.push(DataElement::new(
        tags::PIXEL_DATA,
        if bits == 8 { VR::OB } else { VR::OW },
        PrimitiveValue::from(bytes),
    ));
    let area: u64 = rects
        .iter()
        .map(|&(x0, y0, x1, y1)| u64::from(x1 - x0) * u64::from(y1 - y0))
        .sum();
    Ok(Cleaned {
        elements,
        note: format!(
            "signature {} of the region table: {} region(s), {area} pixels per frame, {} frame(s)",
            signature.number,
            rects.len(),
            info.frames
        ),
    })
}

impl Cleaned {
    /// Puts the cleaned pixels and their attributes into the de-identified data set.
    pub fn apply(self, out: &mut InMemDicomObject) {
        // Offsets into the encapsulated data they described.
        for t in [Tag(0x7FE0, 0x0001), Tag(0x7FE0, 0x0002)] {
            out.remove_element(t);
        }
        for e in self.elements {
            out.put(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<RegionTable, DeidError> {
        RegionTable::parse(text, Path::new("site.script"))
    }

    fn data(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(
            pairs
                .iter()
                .map(|(t, vr, v)| DataElement::new(*t, *vr, PrimitiveValue::from(*v))),
        )
    }

    #[test]
    fn signatures_match_as_ctp_reads_them() {
        let t = table(
            "A comment (see the wiki) before the first signature.\n\
             { Modality.equals(\"US\") * Manufacturer.containsIgnoreCase(\"acme\") * \
               ([0028,0010].equals(\"480\") + Rows.equals(\"600\")) * !ManufacturerModelName.startsWith(\"Old\") }\n\
               (0, 0, 640, 40)\n  (600,440,40,40)\n\
             { Modality.matches(\"CR|DX\") * Columns.isGreaterThan(\"1000\") }\n(0,0,200,50)\n\
             { true. } (0,0,1,1)",
        )
        .expect("table");
        assert_eq!(t.signatures.len(), 3);
        assert_eq!(t.signatures[0].regions.len(), 2);
        assert_eq!(t.signatures[0].line, 2);
        let us = data(&[
            (tags::MODALITY, VR::CS, "US"),
            (tags::MANUFACTURER, VR::LO, "ACME Medical "),
            (tags::MANUFACTURER_MODEL_NAME, VR::LO, "Sono 5"),
        ]);
        let mut us480 = us.clone();
        us480.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(480u16),
        ));
        assert_eq!(t.signature_for(&us480).map(|s| s.number), Some(1));
        let mut old = us480.clone();
        old.put(DataElement::new(
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            PrimitiveValue::from("Old 3"),
        ));
        assert_eq!(t.signature_for(&old).map(|s| s.number), Some(3));
        let dx = data(&[(tags::MODALITY, VR::CS, "DX")]);
        let mut wide = dx.clone();
        wide.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(2048u16),
        ));
        assert_eq!(t.signature_for(&wide).map(|s| s.number), Some(2));
        assert_eq!(t.signature_for(&dx).map(|s| s.number), Some(3));
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let err = |text: &str| table(text).expect_err(text).to_string();
        assert!(err("").contains("no signature"));
        assert!(err("{ Modality.equals(\"US\") }").contains("no region"));
        assert!(err("{ Modality.equals(\"US\") }\n(0, 0, 10)").contains("line 2"));
        assert!(err("{ Modality.equals(\"US\") }\n(0, 0, 0, 10)").contains("is not a region"));
        assert!(err("\n\n{ Modalty.equals(\"US\") } (0,0,1,1)").contains("line 3"));
        assert!(err("{ Modality.is(\"US\") } (0,0,1,1)").contains("not a call"));
        assert!(err("{ Modality.equals(US) } (0,0,1,1)").contains("double quotes"));
        assert!(err("{ Modality.equals() } (0,0,1,1)").contains("needs a value"));
        assert!(err("{ Rows.isLessThan(\"x\") } (0,0,1,1)").contains("needs a number"));
        assert!(err("{ Modality.equals(\"US\") (0,0,1,1)").contains("never closed"));
    }
}
