//! In-process tests of the engine against the emulator.
