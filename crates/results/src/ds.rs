//! A small builder over dicom-object's in-memory data set, for writing objects attribute by
//! attribute in the order the modules list them.

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::InMemDicomObject;

use crate::codes::Code;

#[derive(Debug, Clone)]
pub(crate) struct Ds(pub InMemDicomObject);

impl Default for Ds {
    fn default() -> Ds {
        Ds::new()
    }
}

impl Ds {
    pub fn new() -> Ds {
        Ds(InMemDicomObject::new_empty())
    }

    pub fn put(&mut self, tag: Tag, vr: VR, value: PrimitiveValue) -> &mut Ds {
        self.0.put(DataElement::new(tag, vr, value));
        self
    }

    /// A text value (empty means present but empty: a type 2 attribute).
    pub fn s(&mut self, tag: Tag, vr: VR, value: &str) -> &mut Ds {
        self.put(tag, vr, PrimitiveValue::from(value))
    }

    pub fn strs(&mut self, tag: Tag, vr: VR, values: &[String]) -> &mut Ds {
        self.put(
            tag,
            vr,
            PrimitiveValue::Strs(values.iter().cloned().collect()),
        )
    }

    pub fn us(&mut self, tag: Tag, values: &[u16]) -> &mut Ds {
        self.put(
            tag,
            VR::US,
            PrimitiveValue::U16(values.iter().copied().collect()),
        )
    }

    pub fn ul(&mut self, tag: Tag, values: &[u32]) -> &mut Ds {
        self.put(
            tag,
            VR::UL,
            PrimitiveValue::U32(values.iter().copied().collect()),
        )
    }

    pub fn fl(&mut self, tag: Tag, values: &[f32]) -> &mut Ds {
        self.put(
            tag,
            VR::FL,
            PrimitiveValue::F32(values.iter().copied().collect()),
        )
    }

    pub fn fd(&mut self, tag: Tag, values: &[f64]) -> &mut Ds {
        self.put(
            tag,
            VR::FD,
            PrimitiveValue::F64(values.iter().copied().collect()),
        )
    }

    /// Decimal strings, each at most 16 characters as DS requires.
    pub fn ds(&mut self, tag: Tag, values: &[f64]) -> &mut Ds {
        let v: Vec<String> = values.iter().map(|&x| ds_string(x)).collect();
        self.strs(tag, VR::DS, &v)
    }

    pub fn int_str(&mut self, tag: Tag, value: i64) -> &mut Ds {
        self.s(tag, VR::IS, &value.to_string())
    }

    pub fn at(&mut self, tag: Tag, value: Tag) -> &mut Ds {
        self.put(
            tag,
            VR::AT,
            PrimitiveValue::Tags([value].into_iter().collect()),
        )
    }

    pub fn seq(&mut self, tag: Tag, items: Vec<Ds>) -> &mut Ds {
        let items: Vec<InMemDicomObject> = items.into_iter().map(|d| d.0).collect();
        self.0.put(DataElement::new(
            tag,
            VR::SQ,
            Value::from(DataSetSequence::new(items, Length::UNDEFINED)),
        ));
        self
    }

    /// A code sequence with one item.
    pub fn code(&mut self, tag: Tag, code: &Code) -> &mut Ds {
        self.seq(tag, vec![code_item(code)])
    }

    pub fn bytes(&mut self, tag: Tag, vr: VR, value: Vec<u8>) -> &mut Ds {
        self.put(tag, vr, PrimitiveValue::U8(value.into()))
    }
}

/// One Code Sequence item (Basic Code Sequence Macro).
pub(crate) fn code_item(code: &Code) -> Ds {
    use dicom_dictionary_std::tags;
    let mut d = Ds::new();
    d.s(tags::CODE_VALUE, VR::SH, &code.value)
        .s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, &code.scheme)
        .s(tags::CODE_MEANING, VR::LO, &code.meaning);
    d
}

/// `x` as a DICOM decimal string of at most 16 characters, as precise as fits.
pub(crate) fn ds_string(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    for decimals in (0..=10).rev() {
        let mut s = format!("{x:.decimals$}");
        if s.contains('.') {
            s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
        }
        if s == "-0" {
            s = "0".into();
        }
        if s.len() <= 16 {
            return s;
        }
    }
    let s = format!("{x:.6e}");
    if s.len() <= 16 { s } else { format!("{x:.3e}") }
}

/// A date and time now (UTC), as DA, TM and DT.
pub(crate) fn now() -> (String, String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    dicom_date_time(secs)
}

/// Seconds since 1970 (UTC) as DA (YYYYMMDD), TM (HHMMSS) and DT (with +0000).
pub(crate) fn dicom_date_time(secs: i64) -> (String, String, String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let da = format!("{y:04}{m:02}{d:02}");
    let tm = format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    let dt = format!("{da}{tm}+0000");
    (da, tm, dt)
}

/// An ISO 8601 UTC time as the ledger writes it (`2026-12-01T10:20:30Z` or with a fraction) as
/// DA, TM and DT; `None` if it is not one.
pub fn from_iso(iso: &str) -> Option<(String, String, String)> {
    let b = iso.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<String> {
        let s = iso.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.to_owned())
    };
    let da = format!("{}{}{}", digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let tm = format!("{}{}{}", digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let dt = format!("{da}{tm}+0000");
    Some((da, tm, dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds_string(0.7), "0.7");
        assert_eq!(ds_string(-175.75), "-175.75");
        assert_eq!(ds_string(-0.0), "0");
        assert_eq!(ds_string(1.0 / 3.0), "0.3333333333");
        for x in [123_456_789.123_456_78, -1e-12, 1e300, 0.000_123_456_789] {
            assert!(ds_string(x).len() <= 16, "{x} → {}", ds_string(x));
        }
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(dicom_date_time(0).0, "19700101");
        let (da, tm, _) = dicom_date_time(1_795_997_045); // 2026-11-30T00:04:05Z
        assert_eq!((da.as_str(), tm.as_str()), ("20261130", "000405"));
        assert_eq!(
            from_iso("2026-12-01T10:20:30.123Z").map(|t| t.0),
            Some("20261201".into())
        );
        assert_eq!(from_iso("yesterday"), None);
    }
}
