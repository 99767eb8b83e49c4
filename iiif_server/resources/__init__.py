"""The resources product: book files, files inside ePubs, images resized by matrix parameters."""
