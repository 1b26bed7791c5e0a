"""Previews of stored files for their object page (a table, an image, rendered Markdown, JSON, text),
each made from the few bytes it shows through ranged reads under a cap; `choose.preview` picks one."""
