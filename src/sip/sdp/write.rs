//! [`SessionDescription`] → text, lines in RFC 8866 §5 order, each ended by CRLF.

use std::fmt::{self, Display, Formatter};

use super::model::{
    Attribute, Bandwidth, Connection, Fmtp, MediaDescription, Origin, Rtcp, Rtpmap,
    SessionDescription,
};

fn line(f: &mut Formatter<'_>, kind: char, value: impl Display) -> fmt::Result {
    write!(f, "{kind}={value}\r\n")
}

fn optional_line(f: &mut Formatter<'_>, kind: char, value: &Option<String>) -> fmt::Result {
    match value {
        Some(value) => line(f, kind, value),
        None => Ok(()),
    }
}

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        line(f, 'v', 0)?;
        line(f, 'o', &self.origin)?;
        line(f, 's', &self.session_name)?;
        optional_line(f, 'i', &self.information)?;
        optional_line(f, 'u', &self.uri)?;
        for email in &self.emails {
            line(f, 'e', email)?;
        }
        for phone in &self.phones {
            line(f, 'p', phone)?;
        }
        if let Some(connection) = &self.connection {
            line(f, 'c', connection)?;
        }
        for bandwidth in &self.bandwidths {
            line(f, 'b', bandwidth)?;
        }
        for timing in &self.timing {
            line(f, 't', format_args!("{} {}", timing.start, timing.stop))?;
            for repeat in &timing.repeats {
                line(f, 'r', repeat)?;
            }
        }
        optional_line(f, 'z', &self.time_zones)?;
        optional_line(f, 'k', &self.encryption_key)?;
        for attribute in &self.attributes {
            line(f, 'a', attribute)?;
        }
        for media in &self.media {
            media.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for MediaDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media_type, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        optional_line(f, 'i', &self.information)?;
        if let Some(connection) = &self.connection {
            line(f, 'c', connection)?;
        }
        for bandwidth in &self.bandwidths {
            line(f, 'b', bandwidth)?;
        }
        optional_line(f, 'k', &self.encryption_key)?;
        for attribute in &self.attributes {
            line(f, 'a', attribute)?;
        }
        Ok(())
    }
}

/// The part after `o=`.
impl Display for Origin {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.addr_type.as_str(),
            self.address
        )
    }
}

/// The part after `c=`.
impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type.as_str(), self.address)
    }
}

/// The part after `b=`.
impl Display for Bandwidth {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The part after `a=`.
impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap(map) => write!(f, "rtpmap:{map}"),
            Attribute::Fmtp(fmtp) => write!(f, "fmtp:{fmtp}"),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(direction) => f.write_str(direction.as_str()),
            Attribute::Rtcp(rtcp) => write!(f, "rtcp:{rtcp}"),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(value),
            } => write!(f, "{name}:{value}"),
        }
    }
}

/// The part after `a=rtpmap:`.
impl Display for Rtpmap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(params) = &self.params {
            write!(f, "/{params}")?;
        }
        Ok(())
    }
}

/// The part after `a=fmtp:`.
impl Display for Fmtp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

/// The part after `a=rtcp:`.
impl Display for Rtcp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(connection) = &self.connection {
            write!(f, " {connection}")?;
        }
        Ok(())
    }
}
