//! Audio codecs.
