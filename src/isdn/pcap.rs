//! The D-channel as a pcap file Wireshark and tshark decode: LINKTYPE_LAPD (203), LAPD frames
//! from the address field on, without FCS. Each frame is written as it crosses, both ways.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// LINKTYPE_LAPD: Q.921 frames with no pseudo-header.
pub const LINKTYPE_LAPD: u32 = 203;

pub struct Pcap {
    out: BufWriter<File>,
}

impl Pcap {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65_535u32.to_le_bytes())?;
        out.write_all(&LINKTYPE_LAPD.to_le_bytes())?;
        out.flush()?;
        Ok(Pcap { out })
    }

    /// Appends one frame, stamped `at`, and flushes it (a crash keeps what was written).
    pub fn write(&mut self, at: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let len = frame.len() as u32;
        self.out
            .write_all(&(since.as_secs() as u32).to_le_bytes())?;
        self.out.write_all(&since.subsec_micros().to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_the_pcap_header_and_one_record_per_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pcap");
        let mut pcap = Pcap::create(&path).unwrap();
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        pcap.write(at, &[0x00, 0x01, 0x7f]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &203u32.to_le_bytes());
        assert_eq!(&bytes[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &123_456u32.to_le_bytes());
        assert_eq!(&bytes[40..], &[0x00, 0x01, 0x7f]);
    }
}
