"""English glosses for product words in the other languages merchants write in (Spanish first, some French).

The taxonomy and the sentence-embedding model are English: "Alambre cobre aislado" shares no word with
"Electrical Wires & Cable" and MiniLM reads it as noise. Appending "wire copper insulated" fixes both views.
This is general retail vocabulary by domain (nouns, colours, materials), a core of shop nouns in Portuguese,
Italian, German and Romanian, and colours and materials in French, German, Italian and Portuguese, written from
dictionaries, not from any evaluation row; a word missing here simply gets no gloss, and words that are also
English words with another meaning ("pan", "rock", "hose", "lit") are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from catalogvlm.taxonomy.normalize import tokens

# "foreign word[, inflected form...]: english gloss" per line; blank lines and #-comments separate domains.
# What a product is:
_PRODUCT_WORDS = """
# clothing, footwear, accessories
camisa: shirt
camiseta, playera, remera: t-shirt
blusa: blouse
pantalon: pants trousers
vaquero, mezclilla: jeans denim
falda: skirt
vestido: dress
chaqueta, chamarra, campera: jacket
abrigo: coat
sudadera, buzo: sweatshirt hoodie
sueter: sweater
chaleco: vest
traje: suit
bata: robe
pijama: pajamas sleepwear
ropa: clothing
calzon, calzoncillo: underwear briefs
sosten, brasier, sujetador: bra
calcetin: socks
calceta: socks
bufanda: scarf
gorro, gorra: hat cap
sombrero: hat
guante: gloves
cinturon: belt
corbata: necktie
zapato, calzado: shoes footwear
zapatilla, tenis: sneakers shoes
bota, botin: boots
sandalia, chancla: sandals
bolso, bolsa, cartera: bag handbag
mochila: backpack
billetera: wallet
maleta: suitcase luggage
paraguas: umbrella
gafas, lentes, anteojos: glasses eyewear
reloj: watch clock
traje de bano, banador: swimwear
uniforme: uniform

# jewellery
joya, joyeria: jewelry
gargantilla: necklace
pulsera, brazalete: bracelet
anillo: ring
arete, pendiente, arracada: earrings
dije, colgante: pendant charm
broche: brooch
plata: silver
oro: gold
perla: pearl

# home, decor, bedding, bath
hogar, casa: home
decoracion, decorativo: decor decorative
florero, jarron: vase
cuadro: picture frame wall art
marco: frame
espejo: mirror
vela: candle
portavela, candelabro: candle holder
cojin, almohadon: cushion pillow
almohada: pillow
funda: cover case
cobija, manta, frazada, cobertor: blanket
edredon, colcha: comforter quilt
sabana: sheet bedding
toalla: towel
cortina: curtain
alfombra, tapete: rug carpet
canasta, cesta, cesto: basket
organizador: organizer storage
caja: box
percha, gancho: hanger hook
reloj de pared: wall clock
maceta, matera: planter pot
planta: plant
jardin: garden
incienso: incense
difusor: diffuser
aroma, aromatico: fragrance

# kitchen and dining
cocina: kitchen
taza: mug cup
vaso: glass tumbler drinkware
plato: plate dish
cuenco, tazon: bowl
cubierto: cutlery flatware
cuchara: spoon
tenedor: fork
cuchillo: knife
sarten: frying pan skillet
olla: pot cookware
cacerola: saucepan
tabla de picar: cutting board
botella: bottle
termo: thermos insulated bottle
jarra: pitcher jug
bandeja: tray
mantel: tablecloth
servilleta: napkin
cafetera: coffee maker
tetera: teapot kettle
licuadora: blender
batidora: mixer
horno: oven
parrilla: grill
recipiente, contenedor, tupper: container food storage
frasco: jar

# furniture
mueble: furniture
silla: chair
sillon, butaca: armchair
mesa: table
escritorio: desk
cama: bed
colchon: mattress
cabecero: headboard
estante, estanteria, repisa: shelf shelving
armario, ropero: wardrobe
comoda, cajonera: dresser drawers
gabinete: cabinet
banco, taburete: bench stool
perchero: coat rack

# lighting and electrical
lampara: lamp
luminaria: light fixture
foco, bombilla, bombillo: light bulb
luz: light
electrico, electrica: electrical
alambre: wire
cobre: copper
aislado: insulated
toma, tomacorriente, enchufe: outlet socket receptacle
interruptor, apagador: switch
placa: wall plate cover
tapa: cover plate
tablero: panel board
breaker, disyuntor: circuit breaker
fusible: fuse
canaleta, ducto: conduit
tubo, tuberia: pipe tube
curva, codo: elbow fitting
conector: connector
bateria, pila: battery
cargador: charger
transformador: transformer
timbre: doorbell
ventilador: fan

# hardware, tools, building, plumbing
herramienta: tool
taladro: drill
broca: drill bit
destornillador, desarmador: screwdriver
martillo: hammer
llave: wrench key
alicate, pinza: pliers
sierra: saw
tornillo: screw
tuerca: nut
clavo: nail
perno: bolt
bisagra: hinge
cerradura, candado: lock padlock
pintura: paint
brocha, pincel: brush
cinta: tape
pegamento, adhesivo: glue adhesive
escalera: ladder
manguera: hose
valvula: valve
grifo, llave de agua: faucet
lavabo, lavamanos: sink
inodoro, sanitario: toilet
ducha, regadera: shower
madera: wood
metalico: metal
acero: steel
hierro: iron
aluminio: aluminum
vidrio, cristal: glass
plastico: plastic
ceramica: ceramic
piedra: stone
concreto, cemento: concrete cement
ladrillo: brick
teja: tile roofing
piso: flooring floor

# baby and toddler
bebe: baby
nino, nina, infantil: kids children
juguete: toy
panal: diaper
toallita: wipes
biberon, mamila, mamadera: baby bottle
chupete, chupon: pacifier
cuna: crib
corral, corralito: play yard playpen
cochecito, carriola, carrito: stroller
portabebe, canguro: baby carrier
silla de auto: car seat
extractor: pump
leche: milk
lactancia, amamantar: nursing breastfeeding
babero: bib
mordedor, mordedera: teether
sonaja, sonajero: rattle
andadera: walker
banera: bathtub
envolver, arrullo: swaddle
esterilizador: sterilizer
calentador: warmer heater

# toys, games, sports, outdoors
muneca: doll
peluche: plush stuffed animal
rompecabezas: puzzle
juego: set
pelota, balon: ball
bicicleta: bicycle
casco: helmet
raqueta: racket
pesa, mancuerna: dumbbell weights
colchoneta, tapete de yoga: mat
tienda de campana, carpa: tent
pesca: fishing
natacion: swimming

# health, beauty, personal care
belleza: beauty
crema: cream lotion
jabon: soap
champu: shampoo
acondicionador: conditioner
fragancia: perfume fragrance
maquillaje: makeup cosmetics
labial: lipstick
esmalte: nail polish
cepillo: brush
peine: comb
secador: dryer
plancha: iron straightener
navaja, rasuradora: razor
desodorante: deodorant
protector solar, bloqueador: sunscreen
aceite: oil
suplemento, vitamina: supplement vitamin
medicina, medicamento: medicine
termometro: thermometer
cuidado: care

# food, drink
comida, alimento: food
cafe: coffee
te: tea
dulce, caramelo: candy sweets
galleta: cookie biscuit
queso: cheese
carne: meat
fruta: fruit
verdura: vegetables
especia: spice
miel: honey
vino: wine
cerveza: beer
jugo, zumo: juice
agua: water

# pets
mascota: pet
perro: dog
gato: cat
correa: leash
comedero: feeder bowl
arena: litter
cama para perro: dog bed

# electronics, office
telefono, celular, movil: phone mobile
audifono, auricular: headphones earbuds
bocina, altavoz, parlante: speaker
pantalla: screen display
teclado: keyboard
raton: mouse
computadora, ordenador: computer
camara: camera
funda de celular: phone case
cuaderno, libreta: notebook
boligrafo, pluma: pen
lapiz: pencil
papel: paper
agenda: planner
carpeta: folder
libro: book

# French
chemise: shirt
veste: jacket
chaussure: shoes
sac: bag
bague: ring
bougie: candle
coussin: cushion
couverture: blanket
tasse: mug
assiette: plate
lampe: lamp
jouet: toy
jupe: skirt
manteau: coat
chaussette: socks
collier: necklace
montre: watch
lunettes: glasses eyewear
portefeuille: wallet
coque, etui: phone case cover
chaise: chair
miroir: mirror
tapis: rug
rideau: curtain
savon: soap
bebe: baby
enfant: kids children

# Portuguese
camisola: sweater
calca: pants trousers
saia: skirt
sapato: shoes
tenis: sneakers shoes
bolsa: bag handbag
brinco: earrings
colar: necklace
pulseira: bracelet
anel: ring
oculos: glasses eyewear
capinha: phone case cover
cadeira: chair
travesseiro: pillow
lencol: sheet bedding
toalha: towel
brinquedo: toy
fralda: diaper
chupeta: pacifier
sabonete: soap

# Italian
maglietta: t-shirt
giacca: jacket
scarpa: shoes
borsa: bag handbag
orecchino: earrings
collana: necklace
anello: ring
occhiali: glasses eyewear
sedia: chair
tavolo: table
lampada: lamp
cuscino: cushion pillow
giocattolo: toy
pannolino: diaper

# German
hemd: shirt
kleid: dress
jacke: jacket
schuh: shoes
tasche: bag
ohrring: earrings
halskette, kette: necklace
brille: glasses eyewear
handyhulle, hulle: phone case cover
stuhl: chair
tisch: table
lampe: lamp
kissen: cushion pillow
decke: blanket
spielzeug: toy
windel: diaper

# Romanian
husa: phone case cover
tricou: t-shirt
rochie: dress
pantofi: shoes
geanta: bag
cercei: earrings
colier: necklace
inel: ring
jucarie: toy
"""

# What it looks like or is made of: evidence for attribute values, noise for its category ("verde" is no
# vegetable).
_DESCRIPTIVE_WORDS = """
# colours
negro, negra: black
blanco, blanca: white
rojo, roja: red
azul: blue
verde: green
amarillo, amarilla: yellow
naranja, anaranjado: orange
rosa, rosado: pink
morado, morada, violeta, lila: purple
gris: gray
cafe, marron: brown

dorado, dorada, oro: gold
plateado, plateada, plata: silver
transparente: clear
celeste: light blue
# French ("or", "rose" are English words)
noir, noire: black
blanc, blanche: white
rouge: red
bleu, bleue: blue
vert, verte: green
jaune: yellow
dore, doree: gold
argent, argente, argentee: silver
# German ("rot" and "messing" are English words, "Braun" a brand; "weiß" folds to "weiss")
schwarz: black
weiss: white
blau: blue
grun: green
gelb: yellow
grau: gray
silber: silver
# Italian ("viola" is an instrument; the Spanish plural rule would read English "blue" as "blu")
nero, nera: black
bianco, bianca: white
rosso, rossa: red
giallo, gialla: yellow
grigio, grigia: gray
marrone: brown
argento: silver
# Portuguese
preto, preta: black
branco, branca: white
vermelho, vermelha: red
amarelo, amarela: yellow
cinza: gray
marrom: brown
roxo, roxa: purple
prata: silver
ouro: gold

# materials and sizes (no French "lin": the Spanish plural rule would read "line" as it)
algodon, coton, baumwolle, cotone, algodao: cotton
lana, laine, wolle: wool
seda, soie, seide, seta: silk
cuero, piel, cuir, leder, pelle, couro: leather
lino, leinen, linho: linen
poliester: polyester
tela: fabric
madera, bois, holz, legno, madeira: wood
vidrio, verre, glas, vetro, vidro: glass
acero, acier, stahl, acciaio: steel
inoxidable, inoxydable, rostfrei, inossidabile: stainless
edelstahl: stainless steel
ceramica, ceramique, keramik: ceramic
plastico, plastique, kunststoff, plastica: plastic
terciopelo, velours, samt, velluto, veludo: velvet
encaje, dentelle, spitze, pizzo, renda: lace
gamuza, daim, wildleder, camoscio, camurca: suede
laton, laiton, ottone, latao: brass
bambu, bambou: bamboo
chico, pequeno: small
mediano: medium
grande: large
"""


@lru_cache(maxsize=2)
def glossary(descriptive: bool) -> Mapping[str, str]:
    """Normalised single foreign words -> English gloss (phrases in the table are matched word by word)."""
    entries: dict[str, str] = {}
    for line in (_PRODUCT_WORDS + (_DESCRIPTIVE_WORDS if descriptive else "")).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words, gloss = line.split(":", 1)
        for word in words.split(","):
            keys = tokens(word)
            if len(keys) == 1:
                entries.setdefault(keys[0], gloss.strip())
    return entries


def gloss(text: str, descriptive: bool = False) -> str:
    """English glosses of the foreign words in `text`, in order, or "" when there are none."""
    table = glossary(descriptive)
    found: list[str] = []
    for token in tokens(text):
        # Spanish plurals in -es lose only the "s" in tokens(): "panales" -> "panale" -> "panal"
        english = table.get(token) or (table.get(token[:-1]) if token.endswith("e") else None)
        if english and english not in found:
            found.append(english)
    return " ".join(found)


def with_glosses(fields: Mapping[str, str], descriptive: bool = False) -> dict[str, str]:
    """The product's fields, each followed by the English glosses of its foreign words (colours, materials
    and sizes too when `descriptive`)."""
    glossed = {}
    for name, value in fields.items():
        extra = gloss(value, descriptive)
        glossed[name] = f"{value} {extra}" if extra else value
    return glossed
