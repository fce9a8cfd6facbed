-- A third rendition of each photo, about 224 px, for 112 px thumbnail slots on 2x screens.
-- Photos stored before it existed have none (NULL): their small URL serves the thumb.

ALTER TABLE photos ADD COLUMN small_key TEXT;
ALTER TABLE photos ADD COLUMN small_width BIGINT;
ALTER TABLE photos ADD COLUMN small_height BIGINT;
