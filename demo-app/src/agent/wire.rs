//! The protobuf wire format, read field by field without decoding into structs: the intake
//! walks requests with it (see [`super::otlp_scan`]) so that checking and counting a request
//! costs no memory beyond the request itself, whatever its shape.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

/// Field values as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Length-delimited: a string, bytes, a packed array or an embedded message.
    Len(&'a [u8]),
}

/// One field: its number, its value and its full encoding (tag included), for copying as is.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated field at byte {0}")]
    Truncated(usize),
    #[error("varint longer than 10 bytes at byte {0}")]
    Varint(usize),
    #[error("unsupported wire type {wire_type} at byte {at} (groups are not used by OTLP)")]
    WireType { wire_type: u64, at: usize },
    #[error("invalid field number at byte {0}")]
    FieldNumber(usize),
}

/// Iterates over the fields of one message's encoding.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated(start));
            };
            // `get` found a byte there, so pos < len: no overflow.
            self.pos = self.pos.saturating_add(1);
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Varint(start))
    }

    fn take(&mut self, n: usize, start: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(WireError::Truncated(start))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated(start))?;
        self.pos = end;
        Ok(bytes)
    }

    fn field(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| WireError::FieldNumber(start))?;
        if number == 0 {
            return Err(WireError::FieldNumber(start));
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8, start)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| WireError::Truncated(start))?;
                Value::Len(self.take(len, start)?)
            }
            5 => {
                let b = self.take(4, start)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
            }
            wire_type => {
                return Err(WireError::WireType {
                    wire_type,
                    at: start,
                });
            }
        };
        Ok(Field {
            number,
            value,
            raw: self.buf.get(start..self.pos).unwrap_or_default(),
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // Nothing after a malformed field can be trusted.
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

/// Bytes a varint takes.
pub fn varint_len(value: u64) -> usize {
    // 1 to 64 significant bits, 7 per byte.
    let bits = u64::BITS.saturating_sub((value | 1).leading_zeros());
    usize::try_from(bits.div_ceil(7)).unwrap_or(10)
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes a length-delimited field `number` of `len` bytes takes.
pub fn len_field_size(number: u32, len: usize) -> usize {
    let tag = u64::from(number) << 3 | 2;
    varint_len(tag)
        .saturating_add(varint_len(len as u64))
        .saturating_add(len)
}

/// Writes the tag and length of a length-delimited field; the caller writes the content.
pub fn put_len_header(out: &mut Vec<u8>, number: u32, len: usize) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, len as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type_and_refuses_what_is_broken() {
        // 1: varint 150; 2: "hi"; 3: fixed32 1; 4: fixed64 2.
        let buf = [
            0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        let fields: Vec<_> = Fields::new(&buf).map(Result::unwrap).collect();
        assert_eq!(fields[0].value, Value::Varint(150));
        assert_eq!(fields[1].value, Value::Len(b"hi"));
        assert_eq!(fields[1].raw, &[0x12, 2, b'h', b'i']);
        assert_eq!(fields[2].value, Value::Fixed32(1));
        assert_eq!(fields[3].value, Value::Fixed64(2));

        let first_error = |b: &[u8]| Fields::new(b).find_map(Result::err);
        assert_eq!(first_error(&[0x12, 5, 1]), Some(WireError::Truncated(0)));
        assert_eq!(
            first_error(&[0x0b]),
            Some(WireError::WireType {
                wire_type: 3,
                at: 0
            })
        );
        assert_eq!(first_error(&[0x02, 0]), Some(WireError::FieldNumber(0)));
        assert_eq!(
            first_error(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
            ]),
            Some(WireError::Varint(1))
        );
        assert_eq!(
            first_error(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Some(WireError::Truncated(0)),
            "a huge length is truncation, not an allocation"
        );
    }

    #[test]
    fn writes_varints_of_the_length_it_predicts() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut f = Fields::new(&[]);
            f.buf = &out;
            assert_eq!(f.varint().unwrap(), v);
        }
        assert_eq!(len_field_size(1, 300), 1 + 2 + 300);
    }
}
