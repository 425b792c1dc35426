"""Words that name a listed attribute value without using its name: "women's" is Target gender: Female and Age
group: Adults, "burgundy" is Color: Red, "pre-owned" is Item condition: Used.

General retail vocabulary, written from dictionaries and the taxonomy's own value lists, not from any evaluation
row. A word is listed only where it has no common other meaning in product text ("lavender", "cream", "olive",
"coffee" and "rose" name scents, products and flowers as often as colours, so they are left out). The aliases of a
value apply to every attribute that lists a value of that name (a category's extended attributes included).
Foreign words reach these through the glossary's English glosses.
"""

from __future__ import annotations

from functools import lru_cache

from catalogvlm.taxonomy.normalize import tokens

# "Value name: alias, alias" per line.
_ALIASES = """
# who a product is for
Female: women, woman, womens, ladies, lady, feminine, girl, girls
Male: men, man, mens, masculine, gentleman, gentlemen, gents, boy, boys
Unisex: unisex, gender neutral, men and women, women and men
Adults: adult, adults, women, woman, ladies, men, mens, gentlemen
Kids: kid, kids, children, child, boy, boys, girl, girls, junior, juniors
Babies: baby, babies, infant, infants
Newborn: newborn, newborns
Toddlers: toddler, toddlers
Teens: teen, teens, teenager, teenagers

# condition
Used: used, pre-owned, preowned, pre-loved, preloved, second hand, secondhand, vintage, antique
New: brand new, new with tags, nwt

# colour families of the taxonomy's basic colours
Gray: grey, charcoal, graphite, slate
Beige: taupe, ecru, khaki, nude, champagne
Brown: tan, cognac, chestnut, espresso
Red: burgundy, maroon, crimson, scarlet, bordeaux, oxblood
Blue: turquoise, cobalt, indigo, azure, teal, cyan
Green: emerald, sage, khaki green, forest green
Pink: fuchsia, magenta, blush pink, hot pink
Purple: violet, mauve, lilac
White: ivory, off-white, off white
Gold: golden
Clear: transparent
Multicolor: multicolour, multi-colour, multi-color, multicolored, multicoloured, rainbow
"""


# Value names that marketing copy uses in another sense ("a new scent", "our classic fit", "custom orders",
# "wall art", "organic cotton"): they count only where the merchant files the product (its type and tags).
FILING_ONLY = frozenset(
    {"new", "classic", "custom", "art", "characters", "organic", "natural", "modern", "original", "standard",
     "regular", "premium", "texture", "universal", "basic", "simple", "plain", "traditional", "casual"}
)  # fmt: skip


@lru_cache(maxsize=1)
def aliases() -> dict[str, tuple[tuple[str, ...], ...]]:
    """{value name: its aliases as token tuples}, read once."""
    table: dict[str, tuple[tuple[str, ...], ...]] = {}
    for line in _ALIASES.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        value, _, words = line.partition(":")
        table[value.strip()] = tuple(tokens(w) for w in words.split(",") if tokens(w))
    return table
