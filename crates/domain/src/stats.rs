//! What the stream node measures of a program, kept when the reservation completes.

/// What the stream node measured of one program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Most viewers at the same time.
    pub peak_viewers: u32,
    /// Distinct viewers (play sessions).
    pub unique_viewers: u32,
    /// Minutes watched, summed over viewers.
    pub viewer_minutes: u64,
    /// Bytes sent to viewers.
    pub bytes_out: u64,
    /// Seconds the program was on air.
    pub seconds_on_air: u64,
}
