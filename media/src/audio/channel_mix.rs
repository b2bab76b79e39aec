//! Channel count conversion: mono to many (copy) and many to mono (average).

use super::error::AudioError;

/// Whether [`mix_channels`] converts `from` channels to `to`.
pub(crate) fn can_mix(from: u16, to: u16) -> bool {
    from == to || from == 1 || to == 1
}

/// Appends `input` (interleaved, `from` channels) to `out` converted to `to` channels.
///
/// Equal counts copy; mono to many copies the one channel to each; many to mono averages the
/// channels (so a signal that is the same on every channel keeps its level). Other conversions are
/// refused with [`AudioError::UnsupportedChannelMix`]; `input` must hold whole sample frames.
pub fn mix_channels(
    input: &[i16],
    from: u16,
    to: u16,
    out: &mut Vec<i16>,
) -> Result<(), AudioError> {
    if from == 0 || to == 0 || !can_mix(from, to) {
        return Err(AudioError::UnsupportedChannelMix { from, to });
    }
    if !input.len().is_multiple_of(from as usize) {
        return Err(AudioError::PartialSampleFrame {
            samples: input.len(),
            channels: from,
        });
    }
    let frames = input.len() / from as usize;
    out.reserve(frames * to as usize);
    if from == to {
        out.extend_from_slice(input);
    } else if from == 1 {
        for &s in input {
            out.extend(std::iter::repeat_n(s, to as usize));
        }
    } else {
        for frame in input.chunks_exact(from as usize) {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            // The mean of i16 values is an i16.
            out.push((sum / i32::from(from)) as i16);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_to_mono_averages() {
        let mut out = vec![9];
        mix_channels(
            &[100, 200, -32768, -32768, 32767, 32767, 1, -1],
            2,
            1,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [9, 150, -32768, 32767, 0]);
    }

    #[test]
    fn mono_to_stereo_copies() {
        let mut out = Vec::new();
        mix_channels(&[1, -2, 3], 1, 2, &mut out).unwrap();
        assert_eq!(out, [1, 1, -2, -2, 3, 3]);
    }

    #[test]
    fn equal_counts_copy_and_others_are_refused() {
        let mut out = Vec::new();
        mix_channels(&[1, 2, 3, 4], 2, 2, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(matches!(
            mix_channels(&[0; 6], 2, 3, &mut out),
            Err(AudioError::UnsupportedChannelMix { from: 2, to: 3 })
        ));
        assert!(matches!(
            mix_channels(&[0; 3], 2, 1, &mut out),
            Err(AudioError::PartialSampleFrame { .. })
        ));
        assert!(mix_channels(&[], 0, 1, &mut out).is_err());
    }
}
