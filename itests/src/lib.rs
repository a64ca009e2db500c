//! Real-container tests live in tests/; they land with the image (issues 5, 6).
