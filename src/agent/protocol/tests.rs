mod framing;
mod limits;
mod messages;
mod properties;
mod samples;
