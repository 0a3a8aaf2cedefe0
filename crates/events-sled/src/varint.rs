//! LEB128 varints and a bounds-checked reader: the primitives the record, page and checkpoint
//! layouts are written with. Every read is checked, so damaged bytes give [`Malformed`], never a
//! panic.

/// Bytes did not decode: what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) what: &'static str,
    pub(crate) offset: usize,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed {} at byte {}", self.what, self.offset)
    }
}

pub(crate) fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over bytes whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, Malformed> {
        Err(Malformed {
            what,
            offset: self.offset,
        })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        match self.bytes.get(self.offset) {
            Some(&b) => {
                self.offset += 1;
                Ok(b)
            }
            None => self.fail(what),
        }
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = match self.offset.checked_add(len) {
            Some(end) if end <= self.bytes.len() => end,
            _ => return self.fail(what),
        };
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], Malformed> {
        let slice = self.take(N, what)?;
        let mut out = [0_u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u64_be(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, Malformed> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                return self.fail(what);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(what)
    }

    pub(crate) fn varint_usize(&mut self, what: &'static str) -> Result<usize, Malformed> {
        let value = self.varint(what)?;
        usize::try_from(value).or_else(|_| self.fail(what))
    }

    pub(crate) fn varint_u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let value = self.varint(what)?;
        u16::try_from(value).or_else(|_| self.fail(what))
    }

    pub(crate) fn zigzag(&mut self, what: &'static str) -> Result<i64, Malformed> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let len = self.varint_usize(what)?;
        self.take(len, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_u64(&mut out, value);
            assert_eq!(Reader::new(&out).varint("v").unwrap(), value);
        }
        for value in [0, -1, 1, i64::MIN, i64::MAX, -123_456_789] {
            let mut out = Vec::new();
            put_i64(&mut out, value);
            assert_eq!(Reader::new(&out).zigzag("z").unwrap(), value);
        }
    }

    #[test]
    fn overlong_varint_is_malformed() {
        let bytes = [0xFF_u8; 11];
        assert!(Reader::new(&bytes).varint("v").is_err());
        let mut too_big = vec![0xFF_u8; 9];
        too_big.push(0x02);
        assert!(Reader::new(&too_big).varint("v").is_err());
    }

    #[test]
    fn reads_past_the_end_are_malformed() {
        let mut reader = Reader::new(&[1, 2]);
        assert_eq!(
            reader.take(3, "x"),
            Err(Malformed {
                what: "x",
                offset: 0
            })
        );
        assert!(reader.array::<2>("y").is_ok());
        assert!(reader.u8("z").is_err());
        let mut huge_len = Vec::new();
        put_u64(&mut huge_len, u64::MAX);
        assert!(Reader::new(&huge_len).bytes("b").is_err());
    }
}
