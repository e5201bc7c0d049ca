-- A small features database for the route guide example: mountain huts and summits of the
-- Bernese Oberland, coordinates in degrees * 10^7.
return {
  { name = "Jungfraujoch, Sphinx observatory", location = { latitude = 465475000, longitude = 79850000 } },
  { name = "Eiger summit", location = { latitude = 465775000, longitude = 80052000 } },
  { name = "Moench summit", location = { latitude = 465583000, longitude = 79972000 } },
  { name = "Jungfrau summit", location = { latitude = 465366000, longitude = 79627000 } },
  { name = "Kleine Scheidegg station", location = { latitude = 465856000, longitude = 79614000 } },
  { name = "Maennlichen viewpoint", location = { latitude = 466128000, longitude = 79429000 } },
  { name = "Schilthorn, Piz Gloria", location = { latitude = 465579000, longitude = 78350000 } },
  { name = "Faulhorn hotel", location = { latitude = 466764000, longitude = 80129000 } },
  { name = "Schynige Platte garden", location = { latitude = 466519000, longitude = 79108000 } },
  { name = "Grosse Scheidegg pass", location = { latitude = 466542000, longitude = 81011000 } },
  { name = "Lauterbrunnen, Staubbach falls", location = { latitude = 465944000, longitude = 79063000 } },
  { name = "Muerren village", location = { latitude = 465590000, longitude = 78924000 } },
}
