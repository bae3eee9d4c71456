"""Media work: probing sources and cutting clips with the FFmpeg that ships in a wheel."""
